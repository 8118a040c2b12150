import Foundation
@testable import UNet
import XCTest

/// The small file formats behind the bioimage.io package: CRC-32 and SHA-256 against published
/// values, the ZIP archive read back by a reader written here from the format's description (and by
/// Python's `zipfile` when available), `.npy` headers byte for byte (and read by NumPy when
/// available), and the YAML emitter's quoting (and its output read by a YAML parser when available).
final class ExportFileFormatTests: XCTestCase {
    // MARK: checksums

    func testCRC32MatchesTheCheckValue() {
        // The catalogued check value of CRC-32/ISO-HDLC (the ZIP and PNG CRC).
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([]), 0)
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        XCTAssertEqual(CRC32.update(CRC32.checksum(Array(bytes[..<377])), Array(bytes[377...])), CRC32.checksum(bytes))
    }

    func testSHA256MatchesPublishedDigests() {
        // FIPS 180-4 examples.
        XCTAssertEqual(SHA256.hexDigest([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hexDigest([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Lengths around the padding's block boundaries ("a" repeated; digests from Python's hashlib).
        let expected = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            63: "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
            65: "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0",
            119: "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb",
            120: "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c",
        ]
        for (count, digest) in expected {
            XCTAssertEqual(SHA256.hexDigest([UInt8](repeating: UInt8(ascii: "a"), count: count)), digest, "\(count) bytes")
        }
    }

    // MARK: ZIP

    func testZipArchiveReadsBackEntryForEntry() throws {
        // 2026-11-30 10:24:37 UTC: DOS date (46 << 9 | 11 << 5 | 30), time (10 << 11 | 24 << 5 | 37 / 2).
        let date = Date(timeIntervalSince1970: 1_796_034_277)
        var archive = ZipArchive(modified: date)
        let entries: [(String, [UInt8])] = [
            ("rdf.yaml", Array("a: 1\n".utf8)), ("empty", []), ("dir/ünïcode.bin", (0..<70_000).map { UInt8(truncatingIfNeeded: $0 * 7) }),
        ]
        for (name, bytes) in entries { try archive.add(name, bytes) }
        let bytes = archive.bytes()
        XCTAssertEqual(bytes.count, archive.byteCount)
        let read = try TinyZip.read(bytes)
        XCTAssertEqual(read.map(\.name), entries.map(\.0))
        for (entry, (_, content)) in zip(read, entries) {
            XCTAssertEqual(entry.content, content, entry.name)
            XCTAssertEqual(entry.dosDate, 46 << 9 | 11 << 5 | 30)
            XCTAssertEqual(entry.dosTime, 10 << 11 | 24 << 5 | 18)
            XCTAssertTrue(entry.utf8Names)
        }
        // Python's zipfile checks every CRC (testzip) and reads the same names and contents.
        guard let python = findPython(importing: "zipfile") else {
            print("ExportFileFormatTests: skipping the zipfile check: no python3 on PATH")
            return
        }
        let file = makeTemporaryFolder(self).appendingPathComponent("a.zip")
        try archive.write(to: file.path)
        let script = """
            import hashlib, json, sys, zipfile
            with zipfile.ZipFile(sys.argv[1]) as z:
                print(json.dumps({'bad': z.testzip(), 'names': z.namelist(),
                                  'sha': [hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()],
                                  'date': list(z.infolist()[0].date_time)}))
            """
        let json = try JSONSerialization.jsonObject(with: Data(runTool(python, ["-c", script, file.path]).utf8)) as! [String: Any]
        XCTAssertTrue(json["bad"] is NSNull, "zipfile found a bad CRC in \(json["bad"] ?? "")")
        XCTAssertEqual(json["names"] as? [String], entries.map(\.0))
        XCTAssertEqual(json["sha"] as? [String], entries.map { SHA256.hexDigest($0.1) })
        XCTAssertEqual(json["date"] as? [Int], [2026, 11, 30, 10, 24, 36])
    }

    func testZipArchiveRefusesBadNamesDuplicatesAndTooLargeArchives() throws {
        var zip = ZipArchive(modified: Date(timeIntervalSince1970: 0))  // before 1980: written as 1980-01-01
        for name in ["", "/abs", "a/../b", "..", "./a", "a//b", "a/", "back\\slash", "tab\tname", "nul\u{0}"] {
            XCTAssertThrowsError(try zip.add(name, [1])) { error in
                XCTAssertEqual(error as? ZipArchiveError, .invalidName(name))
                XCTAssertTrue("\(error)".contains("'\(name)'"), "\(error)")
            }
        }
        try zip.add("a", [1])
        XCTAssertThrowsError(try zip.add("a", [2])) { XCTAssertEqual($0 as? ZipArchiveError, .duplicateName("a")) }
        XCTAssertEqual(try TinyZip.read(zip.bytes()).first?.dosDate, 1 << 5 | 1)

        // The 4 GiB limit, scaled down: an archive that would pass its limit is refused, not truncated.
        var small = ZipArchive(modified: Date(), maximumBytes: 200)
        try small.add("a", [UInt8](repeating: 0, count: 50))
        XCTAssertThrowsError(try small.add("b", [UInt8](repeating: 0, count: 60))) { error in
            guard case .tooLarge(let bytes)? = error as? ZipArchiveError else { return XCTFail("\(error)") }
            XCTAssertEqual(bytes, small.byteCount + 30 + 1 + 60 + 46 + 1)
            XCTAssertTrue("\(error)".contains("4 GiB"), "\(error)")
        }
        XCTAssertEqual(small.entries.map(\.name), ["a"])
        XCTAssertEqual(ZipArchive.maximumBytes, 4_294_967_294)

        // The classic end record counts entries in 16 bits.
        var many = ZipArchive(modified: Date())
        for i in 0..<ZipArchive.maximumEntries { try many.add("f\(i)", []) }
        XCTAssertThrowsError(try many.add("one-more", [])) { XCTAssertEqual($0 as? ZipArchiveError, .tooManyEntries(65_535)) }
        XCTAssertEqual(try TinyZip.read(many.bytes()).count, 65_534)
    }

    func testZipArchiveWriteIsAtomic() throws {
        let folder = makeTemporaryFolder(self)
        var zip = ZipArchive(modified: Date())
        try zip.add("x", [1, 2, 3])
        try zip.write(to: folder.appendingPathComponent("p.zip").path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["p.zip"])
        XCTAssertEqual(try [UInt8](Data(contentsOf: folder.appendingPathComponent("p.zip"))), zip.bytes())
        XCTAssertThrowsError(try zip.write(to: folder.appendingPathComponent("missing/p.zip").path)) { error in
            XCTAssertTrue(error is FileWriteError, "\(error)")
        }
    }

    // MARK: .npy

    func testNumpyHeaderIsByteExact() throws {
        let bytes = try NumpyFile.float32([1, -2, 0.5, 0, 3, 4], shape: [1, 1, 2, 3])
        XCTAssertEqual(Array(bytes.prefix(8)), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 0x01, 0x00])  // \x93NUMPY, 1.0
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0, "the data must start 64-byte aligned")
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2, 3), }"), header)
        XCTAssertTrue(header.hasSuffix(" \n"), header)
        XCTAssertEqual(bytes.count, 10 + headerLength + 24)
        XCTAssertEqual(Array(bytes[(10 + headerLength)..<(10 + headerLength + 8)]), [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0])
        // A 1-d shape is a one-element tuple, a 0-d one empty.
        XCTAssertTrue(String(decoding: try NumpyFile.float32([1, 2, 3], shape: [3]), as: UTF8.self).contains("'shape': (3,), }"))
        XCTAssertTrue(String(decoding: try NumpyFile.float32([7], shape: []), as: UTF8.self).contains("'shape': (), }"))
        XCTAssertEqual(try NumpyFile.float32([], shape: [0, 4]).count % 64, 0, "an empty array is the header alone")
    }

    func testNumpyRefusesShapesThatDoNotFit() {
        XCTAssertThrowsError(try NumpyFile.float32([1, 2], shape: [3])) { error in
            XCTAssertEqual(error as? NumpyFileError, .shapeMismatch(shape: [3], values: 2))
            XCTAssertTrue("\(error)".contains("holds 3"), "\(error)")
        }
        XCTAssertThrowsError(try NumpyFile.float32([], shape: [2, -1])) { XCTAssertEqual($0 as? NumpyFileError, .negativeExtent([2, -1])) }
        XCTAssertThrowsError(try NumpyFile.float32([1], shape: [Int](repeating: 1, count: 65))) {
            XCTAssertEqual($0 as? NumpyFileError, .tooManyAxes(65))
        }
        let huge = [Int.max / 2, 4]  // the product overflows: reported, not trapped
        XCTAssertThrowsError(try NumpyFile.float32([1], shape: huge)) { error in
            XCTAssertTrue("\(error)".contains("more than Int.max"), "\(error)")
        }
    }

    func testNumPyLoadsTheFiles() throws {
        guard let python = findPython(importing: "numpy") else {
            print("ExportFileFormatTests: skipping the numpy.load check: no python3 on PATH imports numpy")
            throw XCTSkip("no python3 on PATH imports numpy")
        }
        let folder = makeTemporaryFolder(self)
        let cases: [[Int]] = [[1, 1, 5, 7], [3], [], [2, 0, 3], [1, 2, 3, 4, 5, 6]]
        for (index, shape) in cases.enumerated() {
            let count = shape.reduce(1, *)
            let values = (0..<count).map { Float($0) * 0.25 - 3 }
            let file = folder.appendingPathComponent("a\(index).npy")
            try Data(NumpyFile.float32(values, shape: shape)).write(to: file)
            let script = """
                import json, sys, numpy as np
                a = np.load(sys.argv[1], allow_pickle=False)
                print(json.dumps({'shape': list(a.shape), 'dtype': str(a.dtype), 'values': a.ravel().tolist()}))
                """
            let json = try JSONSerialization.jsonObject(with: Data(runTool(python, ["-c", script, file.path]).utf8)) as! [String: Any]
            XCTAssertEqual(json["shape"] as? [Int], shape)
            XCTAssertEqual(json["dtype"] as? String, "float32")
            XCTAssertEqual((json["values"] as? [Double])?.map(Float.init), values)
        }
    }

    // MARK: YAML

    func testYAMLQuotesEveryStringSafely() {
        XCTAssertEqual(YAMLValue.quoted("plain"), "\"plain\"")
        XCTAssertEqual(YAMLValue.quoted("say \"hi\" \\ bye"), "\"say \\\"hi\\\" \\\\ bye\"")
        XCTAssertEqual(YAMLValue.quoted("two\nlines\tand\r"), "\"two\\nlines\\tand\\r\"")
        XCTAssertEqual(YAMLValue.quoted("bell\u{7} del\u{7F} c1\u{85} nbsp\u{A0}"), "\"bell\\u0007 del\\u007F c1\\u0085 nbsp\u{A0}\"")
        XCTAssertEqual(YAMLValue.quoted("ls\u{2028}bom\u{FEFF}"), "\"ls\\u2028bom\\uFEFF\"")
        XCTAssertEqual(YAMLValue.quoted("Müller 🦈"), "\"Müller 🦈\"")
        // Would be other types, comments, anchors or structure unquoted.
        for s in ["yes", "null", "1e3", "#x", "&a", "*a", "a: b", "- x", "[1]", "{}", "!tag", "%x", "@x", "`x", "'x'", ""] {
            XCTAssertEqual(YAMLValue.quoted(s), "\"\(s)\"")
        }
    }

    func testYAMLNumbersAndLayout() {
        XCTAssertEqual(YAMLValue.number(1e-05), "1.0e-05")
        XCTAssertEqual(YAMLValue.number(0.5), "0.5")
        XCTAssertEqual(YAMLValue.number(3), "3.0")
        XCTAssertEqual(YAMLValue.number(1e300), "1.0e+300")
        XCTAssertEqual(YAMLValue.number(.infinity), ".inf")
        XCTAssertEqual(YAMLValue.number(.nan), ".nan")
        let doc = YAMLValue.map([
            ("a", .int(1)),
            ("list", .list([.string("x"), .double(2.5)])),
            ("maps", .list([.map([("id", .string("y")), ("size", .map([("min", .int(4))]))]), .map([("type", .string("batch"))])])),
            ("nested", .list([.list([.map([("k", .null)])])])),
            ("empty", .list([])),
            ("none", .map([])),
            ("flag", .bool(true)),
            ("odd key", .string("v")),
            ("yes", .string("w")),
        ]).document
        XCTAssertEqual(doc, """
            a: 1
            list: ["x", 2.5]
            maps:
              - id: "y"
                size:
                  min: 4
              - type: "batch"
            nested:
              -
                - k: null
            empty: []
            none: {}
            flag: true
            "odd key": "v"
            "yes": "w"

            """)
    }

    func testYAMLParserReadsWhatWasMeant() throws {
        // ruyaml is the YAML library of bioimageio.spec; the venv `.ci/run` makes has it.
        guard let python = findPython(importing: "ruyaml") else {
            print("ExportFileFormatTests: skipping the YAML parser check: no python3 on PATH imports ruyaml (bioimageio.core's venv has it)")
            throw XCTSkip("no python3 on PATH imports ruyaml")
        }
        let hostile = ["yes", "No", "null", "~", "1e3", "0x1F", "#comment", "&anchor", "*alias", "a: b", "- item", "[1, 2]", "{a: 1}",
                       "!!python/object", "%TAG", "@at", "`tick", "'single'", "\"double\"", "back\\slash", "line\nbreak", "tab\there",
                       "\u{1}\u{7F}\u{85}\u{2028}\u{FEFF}", "Müller 🦈", " leading and trailing ", "", "---", "...", "=", "<<"]
        let value = YAMLValue.map([
            ("strings", .list(hostile.map { .string($0) })),
            ("numbers", .list([.int(-3), .double(1e-05), .double(0.003921569), .double(-0.0), .double(1e300)])),
            ("bools", .list([.bool(true), .bool(false), .null])),
            ("nested", .list([.map([("id", .string("x")), ("axes", .list([.map([("type", .string("batch"))]), .map([])]))])])),
        ])
        let file = makeTemporaryFolder(self).appendingPathComponent("a.yaml")
        try Data(value.document.utf8).write(to: file)
        let script = """
            import json, sys, ruyaml
            print(json.dumps(ruyaml.YAML(typ='safe').load(open(sys.argv[1], encoding='utf-8'))))
            """
        let json = try JSONSerialization.jsonObject(with: Data(runTool(python, ["-c", script, file.path]).utf8)) as! [String: Any]
        XCTAssertEqual(json["strings"] as? [String], hostile)
        let numbers = json["numbers"] as? [NSNumber]
        XCTAssertEqual(numbers?.map(\.doubleValue), [-3, 1e-05, 0.003921569, -0.0, 1e300])
        let bools = json["bools"] as? [Any]
        XCTAssertEqual(bools?[0] as? Bool, true)
        XCTAssertEqual(bools?[1] as? Bool, false)
        XCTAssertTrue(bools?[2] is NSNull)
        let nested = (json["nested"] as? [[String: Any]])?.first
        XCTAssertEqual(nested?["id"] as? String, "x")
        XCTAssertEqual((nested?["axes"] as? [[String: Any]])?.count, 2)
    }
}

/// A ZIP reader written from APPNOTE.TXT for the tests: the end record, the central directory, and
/// each local header, cross-checked; stored entries only.
enum TinyZip {
    struct Entry {
        var name: String
        var content: [UInt8]
        var dosTime: Int
        var dosDate: Int
        var utf8Names: Bool
    }

    struct Malformed: Error, CustomStringConvertible { var description: String }

    static func read(_ b: [UInt8]) throws -> [Entry] {
        func u16(_ i: Int) throws -> Int {
            guard i >= 0, i + 2 <= b.count else { throw Malformed(description: "read past the end at \(i)") }
            return Int(b[i]) | Int(b[i + 1]) << 8
        }
        func u32(_ i: Int) throws -> Int { try u16(i) | u16(i + 2) << 16 }
        let end = b.count - 22  // no archive comment
        guard try u32(end) == 0x0605_4B50 else { throw Malformed(description: "no end record") }
        let count = try u16(end + 10), directorySize = try u32(end + 12), directoryOffset = try u32(end + 16)
        guard try u16(end + 8) == count, directoryOffset + directorySize == end else { throw Malformed(description: "bad end record") }
        var entries: [Entry] = []
        var p = directoryOffset
        for _ in 0..<count {
            guard try u32(p) == 0x0201_4B50 else { throw Malformed(description: "bad central header at \(p)") }
            let flags = try u16(p + 8), method = try u16(p + 10), time = try u16(p + 12), date = try u16(p + 14)
            let crc = try u32(p + 16), compressed = try u32(p + 20), size = try u32(p + 24)
            let nameLength = try u16(p + 28), extra = try u16(p + 30), comment = try u16(p + 32), local = try u32(p + 42)
            guard method == 0, compressed == size else { throw Malformed(description: "not stored") }
            let name = String(decoding: b[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            // The local header repeats the fields.
            guard try u32(local) == 0x0403_4B50, try u16(local + 6) == flags, try u16(local + 8) == 0,
                  try u32(local + 14) == crc, try u32(local + 22) == size, try u16(local + 26) == nameLength,
                  String(decoding: b[(local + 30)..<(local + 30 + nameLength)], as: UTF8.self) == name else {
                throw Malformed(description: "local header of \(name) differs from the central one")
            }
            let start = local + 30 + nameLength + (try u16(local + 28))
            guard start + size <= directoryOffset else { throw Malformed(description: "\(name) overruns the directory") }
            let content = Array(b[start..<(start + size)])
            guard CRC32.checksum(content) == UInt32(crc) else { throw Malformed(description: "bad CRC of \(name)") }
            entries.append(Entry(name: name, content: content, dosTime: time, dosDate: date, utf8Names: flags & 0x800 != 0))
            p += 46 + nameLength + extra + comment
        }
        guard p == end else { throw Malformed(description: "central directory size mismatch") }
        return entries
    }
}

/// A python3 on PATH that imports `modules` (comma-separated), or nil.
func findPython(importing modules: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for folder in path.split(separator: ":") where !folder.isEmpty {
        let candidate = "\(folder)/python3"
        guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
        if (try? runTool(candidate, ["-c", "import \(modules)"])) != nil { return candidate }
    }
    return nil
}

/// Runs a program and returns its standard output; throws with its output on a non-zero exit.
func runTool(_ program: String, _ arguments: [String], status: UnsafeMutablePointer<Int32>? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let folder = FileManager.default.temporaryDirectory
    let outFile = folder.appendingPathComponent("tool-\(UUID().uuidString).out")
    let errorFile = folder.appendingPathComponent("tool-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outFile.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outFile)
        try? FileManager.default.removeItem(at: errorFile)
    }
    process.standardOutput = try FileHandle(forWritingTo: outFile)
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    process.waitUntilExit()
    let output = String(decoding: (try? Data(contentsOf: outFile)) ?? Data(), as: UTF8.self)
    let errors = String(decoding: (try? Data(contentsOf: errorFile)) ?? Data(), as: UTF8.self)
    status?.pointee = process.terminationStatus
    guard process.terminationStatus == 0 else {
        throw NSError(domain: "tool", code: Int(process.terminationStatus),
                      userInfo: [NSLocalizedDescriptionKey: "\(program) \(arguments.prefix(1).joined()) failed (\(process.terminationStatus)): \(errors)\n\(output)"])
    }
    return output
}
