/// A safetensors file that cannot be read or written, naming the file and the problem.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// The file.
    public let path: String
    /// What is wrong with it.
    public let problem: Problem

    /// Creates an error.
    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    /// The specific problem.
    public enum Problem: Equatable, Sendable {
        /// The file could not be opened (the system's reason).
        case cannotOpen(reason: String)
        /// The path is a directory or other non-regular file.
        case notARegularFile
        /// Reading failed or the file ended early (it changed while being read).
        case readFailed(reason: String)
        /// Creating, writing, syncing or renaming the file failed.
        case writeFailed(reason: String)
        /// Fewer than the 8 bytes of the header length.
        case fileTooShort(size: Int)
        /// The header length exceeds the 100 MB limit of the reference implementation.
        case headerTooLarge(length: UInt64)
        /// The header length runs past the end of the file.
        case headerLengthBeyondFile(length: UInt64, fileSize: Int)
        /// The header bytes are not UTF-8.
        case headerNotUTF8
        /// The header is not JSON (reason and byte offset within the header).
        case headerNotJSON(reason: String, offset: Int)
        /// The header is JSON but not an object.
        case headerNotObject(found: String)
        /// `__metadata__` is not an object of strings, or has a duplicate key.
        case invalidMetadata(reason: String)
        /// Two tensors (or two `__metadata__` entries) have the same name.
        case duplicateName(String)
        /// A tensor's entry is not an object or has a duplicate field.
        case invalidEntry(tensor: String, reason: String)
        /// A tensor's entry lacks `dtype`, `shape` or `data_offsets`.
        case missingField(tensor: String, field: String)
        /// A field has the wrong JSON type or form.
        case invalidField(tensor: String, field: String, reason: String)
        /// The dtype is not a safetensors dtype at all.
        case unknownDtype(tensor: String, dtype: String)
        /// The dtype is valid safetensors but not F32, the only one this library stores.
        case unsupportedDtype(tensor: String, dtype: String)
        /// A negative extent, or an element or byte count that overflows.
        case invalidShape(tensor: String, reason: String)
        /// `data_offsets` begin after they end.
        case reversedOffsets(tensor: String, begin: Int, end: Int)
        /// The byte range does not hold shape * 4 bytes.
        case sizeMismatch(tensor: String, shape: [Int], expectedBytes: Int, actualBytes: Int)
        /// The byte range ends past the data section.
        case offsetsPastData(tensor: String, end: Int, dataSize: Int)
        /// Two tensors' byte ranges overlap.
        case overlappingOffsets(tensor: String, other: String)
        /// Bytes of the data section belong to no tensor (a gap, or trailing bytes).
        case unreferencedBytes(offset: Int, count: Int)
        /// A name that cannot be written (`__metadata__`).
        case invalidName(String)
    }

    /// `"<path>: <problem>"`, one line.
    public var description: String { "\(path): \(problem.message)" }
}

extension SafeTensorsError.Problem {
    /// A sentence describing the problem.
    public var message: String {
        switch self {
        case .cannotOpen(let reason): return "cannot open: \(reason)"
        case .notARegularFile: return "not a regular file"
        case .readFailed(let reason): return "read failed: \(reason)"
        case .writeFailed(let reason): return "write failed: \(reason)"
        case .fileTooShort(let size): return "file too short: \(size) bytes, a safetensors file starts with an 8-byte header length"
        case .headerTooLarge(let length): return "header length \(length) exceeds the 100000000-byte limit"
        case .headerLengthBeyondFile(let length, let size):
            return "header length \(length) runs past the end of the file (\(size) bytes)"
        case .headerNotUTF8: return "header is not valid UTF-8"
        case .headerNotJSON(let reason, let offset): return "header is not JSON: \(reason) at header byte \(offset)"
        case .headerNotObject(let found): return "header is \(found), expected a JSON object"
        case .invalidMetadata(let reason): return "invalid __metadata__: \(reason)"
        case .duplicateName(let name): return "duplicate tensor name '\(name)'"
        case .invalidEntry(let t, let reason): return "tensor '\(t)': \(reason)"
        case .missingField(let t, let field): return "tensor '\(t)': missing field '\(field)'"
        case .invalidField(let t, let field, let reason): return "tensor '\(t)': field '\(field)' \(reason)"
        case .unknownDtype(let t, let dtype): return "tensor '\(t)': unknown dtype '\(dtype)'"
        case .unsupportedDtype(let t, let dtype): return "tensor '\(t)': dtype \(dtype) is not supported (only F32)"
        case .invalidShape(let t, let reason): return "tensor '\(t)': invalid shape: \(reason)"
        case .reversedOffsets(let t, let b, let e): return "tensor '\(t)': data_offsets [\(b), \(e)] end before they begin"
        case .sizeMismatch(let t, let shape, let expected, let actual):
            return "tensor '\(t)': shape \(shape) of F32 needs \(expected) bytes, data_offsets span \(actual)"
        case .offsetsPastData(let t, let end, let size):
            return "tensor '\(t)': data_offsets end at \(end), past the \(size)-byte data section"
        case .overlappingOffsets(let t, let other): return "tensors '\(other)' and '\(t)' have overlapping data_offsets"
        case .unreferencedBytes(let offset, let count):
            return "\(count) bytes of the data section at offset \(offset) belong to no tensor"
        case .invalidName(let name): return "'\(name)' cannot be used as a tensor name"
        }
    }
}
