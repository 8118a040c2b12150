/// A safetensors file in memory: named F32 tensors in file order plus the `__metadata__` string map.
///
/// The format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length
/// `N`, `N` bytes of UTF-8 JSON mapping each tensor name to `{"dtype", "shape", "data_offsets"}`
/// (offsets relative to the data section, which follows the header) plus an optional
/// `"__metadata__"` object of strings, then the raw little-endian data. Like the reference
/// implementation this writer pads the header with spaces to a multiple of 8 bytes, and this reader
/// requires the tensors to cover the data section exactly (no overlaps, gaps or trailing bytes).
///
/// Reading checks every header value before it sizes anything: the header length against the file
/// size, each shape's element count for overflow, and each byte range against its shape and the
/// data section. A malformed file throws a `SafeTensorsError` naming the file and the problem.
public struct SafeTensors {
    /// The tensors in file order (ascending data offsets when read).
    public var tensors: [(name: String, tensor: Tensor)]
    /// The `__metadata__` map.
    public var metadata: [String: String]

    /// The reference implementation's limit on the header length.
    public static let maximumHeaderLength: UInt64 = 100_000_000

    /// The dtypes the format defines; all but F32 are reported as unsupported rather than unknown.
    static let knownDtypes: Set<String> = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3",
                                           "F6_E3M2", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64",
                                           "I64", "U64", "C64"]

    /// Creates a file's contents.
    public init(tensors: [(name: String, tensor: Tensor)] = [], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor named `name`, if present.
    public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }

    /// The tensor names in order.
    public var names: [String] { tensors.map(\.name) }

    // MARK: Writing

    /// Writes the file atomically: a temporary file in the same directory is written, synced and then
    /// renamed over `path`, so readers never see a partial file.
    public func write(to path: String) throws {
        var seen = Set<String>()
        for (name, _) in tensors {
            guard name != "__metadata__" else { throw SafeTensorsError(path: path, problem: .invalidName(name)) }
            guard seen.insert(name).inserted else { throw SafeTensorsError(path: path, problem: .duplicateName(name)) }
        }
        let header = encodedHeader()
        do {
            let writer = try AtomicFileWriter(path: path)
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try writer.write($0.baseAddress!, count: 8) }
            try writer.write(header)
            for (_, tensor) in tensors where tensor.count > 0 {
                #if _endian(big)
                let swapped = tensor.scalars.map { $0.bitPattern.littleEndian }
                try swapped.withUnsafeBytes { try writer.write($0.baseAddress!, count: $0.count) }
                #else
                try tensor.withUnsafeBufferPointer { try writer.write(UnsafeRawPointer($0.baseAddress!), count: $0.count * 4) }
                #endif
            }
            try writer.commit()
        } catch let error as FileWriteError {
            throw SafeTensorsError(path: path, problem: .writeFailed(reason: error.reason))
        }
    }

    /// The JSON header, space-padded to a multiple of 8 bytes: metadata first (keys sorted), then the
    /// tensors in order with consecutive offsets.
    func encodedHeader() -> [UInt8] {
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            for (i, key) in metadata.keys.sorted().enumerated() {
                if i > 0 { json += "," }
                appendJSONString(key, to: &json)
                json += ":"
                appendJSONString(metadata[key]!, to: &json)
            }
            json += "}"
            first = false
        }
        var offset = 0
        for (name, tensor) in tensors {
            if !first { json += "," }
            first = false
            appendJSONString(name, to: &json)
            let end = offset + tensor.count * 4
            json += ":{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],"
            json += "\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var bytes = Array(json.utf8)
        bytes += Array(repeating: UInt8(ascii: " "), count: (8 - bytes.count % 8) % 8)
        return bytes
    }

    // MARK: Reading

    /// A validated header entry.
    struct Entry {
        let name: String
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    /// Reads and validates only the header of a file: its metadata and each tensor's name and shape,
    /// without loading tensor data (for `unet info` and for resuming, which needs the configuration
    /// before it can build the model).
    public static func readHeader(from path: String) throws -> (metadata: [String: String], shapes: [(name: String, shape: [Int])]) {
        let file = try FileIO.Reader(path: path)
        let (headerLength, headerBytes) = try readHeaderBytes(file, path: path)
        let (entries, metadata) = try parseHeader(headerBytes, dataSize: file.size - 8 - headerLength, path: path)
        return (metadata, entries.map { ($0.name, $0.shape) })
    }

    /// The header's length and bytes, checked against the file size before anything is allocated.
    static func readHeaderBytes(_ file: FileIO.Reader, path: String) throws -> (Int, [UInt8]) {
        func fail(_ problem: SafeTensorsError.Problem) -> SafeTensorsError { SafeTensorsError(path: path, problem: problem) }
        guard file.size >= 8 else { throw fail(.fileTooShort(size: file.size)) }
        var lengthBytes: UInt64 = 0
        try withUnsafeMutableBytes(of: &lengthBytes) { try file.read(into: $0.baseAddress!, count: 8, at: 0) }
        let length = UInt64(littleEndian: lengthBytes)
        // Both checks come before the header is read: its buffer is sized by a value now known to fit.
        guard length <= maximumHeaderLength else { throw fail(.headerTooLarge(length: length)) }
        guard length <= UInt64(file.size - 8) else { throw fail(.headerLengthBeyondFile(length: length, fileSize: file.size)) }
        let headerLength = Int(length)
        return (headerLength, try file.readBytes(count: headerLength, at: 8))
    }

    /// Reads and validates a file.
    public static func read(from path: String) throws -> SafeTensors {
        let file = try FileIO.Reader(path: path)
        let (headerLength, headerBytes) = try readHeaderBytes(file, path: path)
        let dataSize = file.size - 8 - headerLength
        let (entries, metadata) = try parseHeader(headerBytes, dataSize: dataSize, path: path)

        var result = SafeTensors(metadata: metadata)
        result.tensors.reserveCapacity(entries.count)
        for entry in entries {
            // The element count is validated: end - begin == count * 4 and end <= dataSize <= file size.
            var tensor = Tensor(uninitializedShape: entry.shape)
            if tensor.count > 0 {
                try tensor.withUnsafeMutableBufferPointer { buffer in
                    try file.read(into: UnsafeMutableRawPointer(buffer.baseAddress!), count: entry.end - entry.begin,
                                  at: 8 + headerLength + entry.begin)
                    #if _endian(big)
                    for i in buffer.indices { buffer[i] = Float(bitPattern: UInt32(littleEndian: buffer[i].bitPattern)) }
                    #endif
                }
            }
            result.tensors.append((entry.name, tensor))
        }
        return result
    }

    /// Parses and validates a header against a data section of `dataSize` bytes. Returns the entries
    /// sorted by offset.
    static func parseHeader(_ bytes: [UInt8], dataSize: Int, path: String) throws -> ([Entry], [String: String]) {
        func fail(_ problem: SafeTensorsError.Problem) -> SafeTensorsError { SafeTensorsError(path: path, problem: problem) }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw fail(.headerNotUTF8) }
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch let error as JSONSyntaxError {
            throw fail(.headerNotJSON(reason: error.message, offset: error.offset))
        }
        guard case .object(let members) = root else { throw fail(.headerNotObject(found: root.typeName)) }

        var metadata: [String: String] = [:]
        var sawMetadata = false
        var entries: [Entry] = []
        var names = Set<String>()
        for (name, value) in members {
            if name == "__metadata__" {
                guard !sawMetadata else { throw fail(.duplicateName(name)) }
                sawMetadata = true
                guard case .object(let pairs) = value else {
                    throw fail(.invalidMetadata(reason: "it is \(value.typeName), expected an object of strings"))
                }
                for (key, item) in pairs {
                    guard case .string(let text) = item else {
                        throw fail(.invalidMetadata(reason: "value of '\(key)' is \(item.typeName), expected a string"))
                    }
                    guard metadata.updateValue(text, forKey: key) == nil else {
                        throw fail(.invalidMetadata(reason: "duplicate key '\(key)'"))
                    }
                }
                continue
            }
            guard names.insert(name).inserted else { throw fail(.duplicateName(name)) }
            entries.append(try parseEntry(name, value, dataSize: dataSize, path: path))
        }

        // Byte ranges must tile the data section: sorted by offset, each starts where the last ended.
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        var previous: String?
        for entry in entries {
            if entry.begin < position { throw fail(.overlappingOffsets(tensor: entry.name, other: previous ?? "")) }
            if entry.begin > position { throw fail(.unreferencedBytes(offset: position, count: entry.begin - position)) }
            if entry.end > entry.begin { position = entry.end; previous = entry.name }
        }
        if position != dataSize { throw fail(.unreferencedBytes(offset: position, count: dataSize - position)) }
        return (entries, metadata)
    }

    /// Validates one tensor entry: fields, dtype, shape (no negative extent, no overflow), offsets.
    static func parseEntry(_ name: String, _ value: JSONValue, dataSize: Int, path: String) throws -> Entry {
        func fail(_ problem: SafeTensorsError.Problem) -> SafeTensorsError { SafeTensorsError(path: path, problem: problem) }
        guard case .object(let fields) = value else {
            throw fail(.invalidEntry(tensor: name, reason: "entry is \(value.typeName), expected an object"))
        }
        var byName: [String: JSONValue] = [:]
        for (key, item) in fields {
            guard byName.updateValue(item, forKey: key) == nil else {
                throw fail(.invalidEntry(tensor: name, reason: "duplicate field '\(key)'"))
            }
        }
        guard let dtypeValue = byName["dtype"] else { throw fail(.missingField(tensor: name, field: "dtype")) }
        guard let shapeValue = byName["shape"] else { throw fail(.missingField(tensor: name, field: "shape")) }
        guard let offsetsValue = byName["data_offsets"] else { throw fail(.missingField(tensor: name, field: "data_offsets")) }

        guard case .string(let dtype) = dtypeValue else {
            throw fail(.invalidField(tensor: name, field: "dtype", reason: "is \(dtypeValue.typeName), expected a string"))
        }
        guard dtype == "F32" else {
            throw fail(knownDtypes.contains(dtype) ? .unsupportedDtype(tensor: name, dtype: dtype)
                                                   : .unknownDtype(tensor: name, dtype: dtype))
        }

        guard case .array(let extents) = shapeValue else {
            throw fail(.invalidField(tensor: name, field: "shape", reason: "is \(shapeValue.typeName), expected an array"))
        }
        var shape: [Int] = []
        shape.reserveCapacity(extents.count)
        var elementCount = 1
        for extent in extents {
            guard case .number(let text) = extent else {
                throw fail(.invalidField(tensor: name, field: "shape", reason: "holds \(extent.typeName), expected integers"))
            }
            if text.hasPrefix("-") {
                throw fail(.invalidShape(tensor: name, reason: "negative extent \(text)"))
            }
            guard text.allSatisfy(\.isASCIIDigit) else {
                throw fail(.invalidField(tensor: name, field: "shape", reason: "holds \(text), expected integers"))
            }
            guard let e = Int(text) else { throw fail(.invalidShape(tensor: name, reason: "extent \(text) overflows")) }
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: e)
            guard !overflow else { throw fail(.invalidShape(tensor: name, reason: "element count of \(shapeValueText(extents)) overflows")) }
            elementCount = product
            shape.append(e)
        }
        let (byteCount, overflow) = elementCount.multipliedReportingOverflow(by: 4)
        guard !overflow else { throw fail(.invalidShape(tensor: name, reason: "byte count of \(shape) overflows")) }

        guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
            throw fail(.invalidField(tensor: name, field: "data_offsets", reason: "must be an array of two integers"))
        }
        var bounds: [Int] = []
        for offset in offsets {
            guard case .number(let text) = offset, text.allSatisfy(\.isASCIIDigit) else {
                throw fail(.invalidField(tensor: name, field: "data_offsets", reason: "must hold non-negative integers"))
            }
            guard let v = Int(text) else {
                throw fail(.invalidField(tensor: name, field: "data_offsets", reason: "value \(text) overflows"))
            }
            bounds.append(v)
        }
        let (begin, end) = (bounds[0], bounds[1])
        guard begin <= end else { throw fail(.reversedOffsets(tensor: name, begin: begin, end: end)) }
        guard end <= dataSize else { throw fail(.offsetsPastData(tensor: name, end: end, dataSize: dataSize)) }
        guard end - begin == byteCount else {
            throw fail(.sizeMismatch(tensor: name, shape: shape, expectedBytes: byteCount, actualBytes: end - begin))
        }
        return Entry(name: name, shape: shape, begin: begin, end: end)
    }

    private static func shapeValueText(_ extents: [JSONValue]) -> String {
        "[" + extents.map { if case .number(let t) = $0 { return t } else { return "?" } }.joined(separator: ", ") + "]"
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
