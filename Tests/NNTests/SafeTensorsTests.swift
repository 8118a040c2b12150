import Foundation
import NN
import XCTest

final class SafeTensorsTests: XCTestCase {
    func specialValues() -> SafeTensors {
        let special: [Float] = [0, -0.0, .infinity, -.infinity, Float(bitPattern: 0x7FC0_1234), .leastNonzeroMagnitude,
                                .greatestFiniteMagnitude, 1.0 / 3.0]
        var rng = SeededGenerator(seed: 9)
        return SafeTensors(tensors: [
            ("special", Tensor(shape: [2, 4], scalars: special)),
            ("scalar", Tensor(3.25)),
            ("empty", Tensor.zeros([0, 3])),
            ("layer.0.weight", Tensor.randomNormal([3, 2, 3, 3], generator: &rng)),
        ], metadata: ["epoch": "12", "quote \"and\" backslash \\": "line\nbreak\ttab \u{1} ü ✓", "": "empty key"])
    }

    func testWriteReadRoundTripIsBitExact() throws {
        let dir = makeTemporaryDirectory(self)
        let original = specialValues()
        try original.write(to: dir + "/a.safetensors")
        let read = try SafeTensors.read(from: dir + "/a.safetensors")
        XCTAssertEqual(read.names, original.names)
        XCTAssertEqual(read.metadata, original.metadata)
        for ((_, a), (_, b)) in zip(original.tensors, read.tensors) {
            XCTAssertEqual(a.shape, b.shape)
            XCTAssertEqual(bits(a), bits(b))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["a.safetensors"], "no temporary file left")
    }

    func testHeaderIsLittleEndianLengthAndSpacePaddedJSON() throws {
        let dir = makeTemporaryDirectory(self)
        let t = SafeTensors(tensors: [("w", Tensor(shape: [2], scalars: [1, -2]))])
        try t.write(to: dir + "/h.safetensors")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/h.safetensors")))
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        XCTAssertEqual(n % 8, 0)
        XCTAssertEqual(bytes.count, 8 + n + 8)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        XCTAssertEqual(header.trimmingCharacters(in: .whitespaces),
                       #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#)
        XCTAssertEqual(Array(bytes[(8 + n)...]), [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0])  // 1.0, -2.0 little-endian
    }

    func testAtomicWriteReplacesAndFailsCleanly() throws {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/c.safetensors"
        try SafeTensors(tensors: [("a", Tensor(1))]).write(to: path)
        try SafeTensors(tensors: [("b", Tensor(2))]).write(to: path)
        XCTAssertEqual(try SafeTensors.read(from: path).names, ["b"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["c.safetensors"])
        XCTAssertThrowsError(try SafeTensors(tensors: [("a", Tensor(1))]).write(to: dir + "/missing/x.safetensors")) {
            guard case .writeFailed = ($0 as? SafeTensorsError)?.problem else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try SafeTensors(tensors: [("a", Tensor(1)), ("a", Tensor(2))]).write(to: path)) {
            XCTAssertEqual(($0 as? SafeTensorsError)?.problem, .duplicateName("a"))
        }
        XCTAssertThrowsError(try SafeTensors(tensors: [("__metadata__", Tensor(1))]).write(to: path))
        XCTAssertEqual(try SafeTensors.read(from: path).names, ["b"], "failed writes leave the old file")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["c.safetensors"])
    }

    // MARK: Malformed files

    /// Writes a file from a header string and data bytes; the declared length defaults to the header's.
    func malformed(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil, raw: [UInt8]? = nil) -> String {
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/bad.safetensors"
        var bytes: [UInt8]
        if let raw {
            bytes = raw
        } else {
            let h = Array(header.utf8)
            let n = declaredLength ?? UInt64(h.count)
            bytes = (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + h + data
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func assertProblem(_ path: String, _ expected: SafeTensorsError.Problem, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.read(from: path), file: file, line: line) { error in
            guard let error = error as? SafeTensorsError else { return XCTFail("not a SafeTensorsError: \(error)", file: file, line: line) }
            XCTAssertEqual(error.problem, expected, file: file, line: line)
            XCTAssertEqual(error.path, path, file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix(path + ": "), error.description, file: file, line: line)
        }
    }

    func entry(_ dtype: String = "F32", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        #"{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    let eight = [UInt8](repeating: 0, count: 8)

    func testTruncatedFiles() {
        assertProblem(malformed("", raw: []), .fileTooShort(size: 0))
        assertProblem(malformed("", raw: [1, 0, 0, 0, 0]), .fileTooShort(size: 5))
    }

    func testHeaderLengthBeyondFileOrTooLarge() {
        assertProblem(malformed("{}", declaredLength: 1000), .headerLengthBeyondFile(length: 1000, fileSize: 10))
        assertProblem(malformed("{}", declaredLength: 3), .headerLengthBeyondFile(length: 3, fileSize: 10))
        assertProblem(malformed("{}", declaredLength: UInt64.max), .headerTooLarge(length: UInt64.max))
        assertProblem(malformed("{}", declaredLength: 1 << 62), .headerTooLarge(length: 1 << 62))
    }

    func testHeaderNotUTF8NotJSONOrNotObject() {
        assertProblem(malformed("", raw: [2, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFE]), .headerNotUTF8)
        assertProblem(malformed("not json"), .headerNotJSON(reason: "invalid literal", offset: 0))
        assertProblem(malformed(#"{"a": {"dtype": "F32",}"#), .headerNotJSON(reason: "expected a string key", offset: 22))
        assertProblem(malformed(#"{"a":1} x"#), .headerNotJSON(reason: "unexpected text after the value", offset: 8))
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        assertProblem(malformed(#"{"a":"# + deep + "}"), .headerNotJSON(reason: "nesting deeper than 64", offset: 68))
        assertProblem(malformed("[1, 2]"), .headerNotObject(found: "an array"))
        assertProblem(malformed("  "), .headerNotJSON(reason: "unexpected end of input", offset: 2))
    }

    func testMissingAndMistypedFields() {
        assertProblem(malformed(#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, data: eight), .missingField(tensor: "w", field: "dtype"))
        assertProblem(malformed(#"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#, data: eight), .missingField(tensor: "w", field: "shape"))
        assertProblem(malformed(#"{"w":{"dtype":"F32","shape":[2]}}"#, data: eight), .missingField(tensor: "w", field: "data_offsets"))
        assertProblem(malformed(#"{"w":[1]}"#), .invalidEntry(tensor: "w", reason: "entry is an array, expected an object"))
        assertProblem(malformed(#"{"w":\#(entry(shape: "[2.5]"))}"#, data: eight),
                      .invalidField(tensor: "w", field: "shape", reason: "holds 2.5, expected integers"))
        assertProblem(malformed(#"{"w":\#(entry(offsets: "[0]"))}"#, data: eight),
                      .invalidField(tensor: "w", field: "data_offsets", reason: "must be an array of two integers"))
        assertProblem(malformed(#"{"w":\#(entry(offsets: "[-8,0]"))}"#, data: eight),
                      .invalidField(tensor: "w", field: "data_offsets", reason: "must hold non-negative integers"))
        assertProblem(malformed(#"{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
                      .invalidEntry(tensor: "w", reason: "duplicate field 'dtype'"))
    }

    func testUnknownAndUnsupportedDtypes() {
        assertProblem(malformed(#"{"w":\#(entry("F33"))}"#, data: eight), .unknownDtype(tensor: "w", dtype: "F33"))
        assertProblem(malformed(#"{"w":\#(entry("F16", offsets: "[0,4]"))}"#, data: [0, 0, 0, 0]),
                      .unsupportedDtype(tensor: "w", dtype: "F16"))
    }

    func testAbsurdShapes() {
        assertProblem(malformed(#"{"w":\#(entry(shape: "[-2]"))}"#, data: eight), .invalidShape(tensor: "w", reason: "negative extent -2"))
        assertProblem(malformed(#"{"w":\#(entry(shape: "[4294967296,4294967296,16]"))}"#, data: eight),
                      .invalidShape(tensor: "w", reason: "element count of [4294967296, 4294967296, 16] overflows"))
        assertProblem(malformed(#"{"w":\#(entry(shape: "[4611686018427387904]"))}"#, data: eight),
                      .invalidShape(tensor: "w", reason: "byte count of [4611686018427387904] overflows"))
        assertProblem(malformed(#"{"w":\#(entry(shape: "[99999999999999999999999]"))}"#, data: eight),
                      .invalidShape(tensor: "w", reason: "extent 99999999999999999999999 overflows"))
        // A huge but representable element count never reaches an allocation: its byte range cannot fit.
        assertProblem(malformed(#"{"w":\#(entry(shape: "[1000000000000]", offsets: "[0,4000000000000]"))}"#, data: eight),
                      .offsetsPastData(tensor: "w", end: 4_000_000_000_000, dataSize: 8))
    }

    func testBadOffsets() {
        assertProblem(malformed(#"{"w":\#(entry(offsets: "[8,0]"))}"#, data: eight), .reversedOffsets(tensor: "w", begin: 8, end: 0))
        assertProblem(malformed(#"{"w":\#(entry(offsets: "[8,16]"))}"#, data: eight), .offsetsPastData(tensor: "w", end: 16, dataSize: 8))
        assertProblem(malformed(#"{"w":\#(entry(shape: "[3]"))}"#, data: eight),
                      .sizeMismatch(tensor: "w", shape: [3], expectedBytes: 12, actualBytes: 8))
        assertProblem(malformed(#"{"a":\#(entry()),"b":\#(entry(offsets: "[4,12]"))}"#, data: eight + [0, 0, 0, 0]),
                      .overlappingOffsets(tensor: "b", other: "a"))
        assertProblem(malformed(#"{"a":\#(entry()),"b":\#(entry())}"#, data: eight), .overlappingOffsets(tensor: "b", other: "a"))
        assertProblem(malformed(#"{"w":\#(entry(offsets: "[4,12]"))}"#, data: eight + [0, 0, 0, 0]), .unreferencedBytes(offset: 0, count: 4))
        assertProblem(malformed(#"{"w":\#(entry())}"#, data: eight + [1]), .unreferencedBytes(offset: 8, count: 1))
    }

    func testDuplicateNamesAndBadMetadata() {
        assertProblem(malformed(#"{"w":\#(entry()),"w":\#(entry(offsets: "[8,16]"))}"#, data: eight + eight), .duplicateName("w"))
        assertProblem(malformed(#"{"__metadata__":{"a":"1"},"__metadata__":{}}"#), .duplicateName("__metadata__"))
        assertProblem(malformed(#"{"__metadata__":{"epoch":3}}"#),
                      .invalidMetadata(reason: "value of 'epoch' is a number, expected a string"))
        assertProblem(malformed(#"{"__metadata__":"x"}"#), .invalidMetadata(reason: "it is a string, expected an object of strings"))
        assertProblem(malformed(#"{"__metadata__":{"a":"1","a":"2"}}"#), .invalidMetadata(reason: "duplicate key 'a'"))
    }

    func testUnopenableFiles() {
        let dir = makeTemporaryDirectory(self)
        assertProblem(dir, .notARegularFile)
        XCTAssertThrowsError(try SafeTensors.read(from: dir + "/nope.safetensors")) {
            guard case .cannotOpen = ($0 as? SafeTensorsError)?.problem else { return XCTFail("\($0)") }
        }
    }

    func testAcceptsForeignButValidLayouts() throws {
        // Name-ordered header with reversed data order, escapes, whitespace, and no metadata.
        let header = #" { "b\u00fc" : {"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "a":{"data_offsets":[4,8],"shape":[],"dtype":"F32"} } "#
        let data: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]
        let file = try SafeTensors.read(from: malformed(header, data: data))
        XCTAssertEqual(file.names, ["bü", "a"])
        XCTAssertEqual(file["a"]?.scalars, [2])
        XCTAssertEqual(file["a"]?.shape, [])
        XCTAssertEqual(file["bü"]?.scalars, [1])
    }

    // MARK: Independent reader

    func testPythonNumpyReadsWhatWeWrite() throws {
        guard let python = pythonWithNumpy() else {
            print("SafeTensorsTests: skipping the independent reader test: python3 with numpy is not available")
            return
        }
        let dir = makeTemporaryDirectory(self)
        let path = dir + "/py.safetensors"
        let original = specialValues()
        try original.write(to: path)
        let script = """
        import json, struct, sys
        import numpy as np
        raw = open(sys.argv[1], 'rb').read()
        (n,) = struct.unpack('<Q', raw[:8])
        assert n % 8 == 0, 'header not padded to 8 bytes'
        header = json.loads(raw[8:8 + n].decode('utf-8'))
        data = raw[8 + n:]
        meta = header.pop('__metadata__', {})
        out = {'metadata': meta, 'tensors': {}}
        covered = 0
        for name, info in header.items():
            assert info['dtype'] == 'F32'
            begin, end = info['data_offsets']
            covered += end - begin
            array = np.frombuffer(data[begin:end], dtype='<f4').reshape(info['shape'])
            out['tensors'][name] = {'shape': list(array.shape), 'bits': [int(b) for b in array.view('<u4').ravel()]}
        assert covered == len(data)
        print(json.dumps(out))
        """
        let output = try runProgram(python[0], Array(python.dropFirst()) + ["-c", script, path])
        let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
        XCTAssertEqual(json["metadata"] as? [String: String], original.metadata)
        let tensors = json["tensors"] as! [String: [String: [Int]]]
        XCTAssertEqual(Set(tensors.keys), Set(original.names))
        for (name, tensor) in original.tensors {
            XCTAssertEqual(tensors[name]?["shape"], tensor.shape, name)
            XCTAssertEqual(tensors[name]?["bits"]?.map { UInt32($0) }, bits(tensor), name)
        }
    }
}

/// A command (program and leading arguments) that runs a python3 able to import numpy, or nil.
/// Tries the `python3` on PATH first (a pyenv or venv one may have numpy where the system one does not).
func pythonWithNumpy() -> [String]? {
    for candidate in [["/usr/bin/env", "python3"], ["/usr/bin/python3"], ["/usr/local/bin/python3"]]
    where FileManager.default.isExecutableFile(atPath: candidate[0]) {
        if (try? runProgram(candidate[0], Array(candidate.dropFirst()) + ["-c", "import numpy"])) != nil { return candidate }
    }
    return nil
}

/// Runs a program and returns its standard output; throws on a non-zero exit.
func runProgram(_ program: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw NSError(domain: "run", code: Int(process.terminationStatus),
                      userInfo: [NSLocalizedDescriptionKey: String(decoding: errors, as: UTF8.self)])
    }
    return String(decoding: data, as: UTF8.self)
}
