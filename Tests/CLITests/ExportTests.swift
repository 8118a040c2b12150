import Foundation
import XCTest

/// `unet export --onnx`: the file it writes (checked by onnx and run by onnxruntime when a python3 on
/// PATH has them) and its one-line errors with their exit codes.
final class ExportTests: XCTestCase {
    func testExportWritesAnONNXModelThatOnnxRuntimeRuns() throws {
        let f = try Fixture.shared()
        let output = f.root.appendingPathComponent("export/nested/model.onnx")
        let r = try unet(["export", "--onnx", output.path, f.best, "--softmax"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Wrote \(output.path)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("opset 17"), r.stdout)
        XCTAssertTrue(r.stdout.contains("multiples of 4"), r.stdout)  // the fixture has depth 2
        let bytes = try [UInt8](Data(contentsOf: output))
        XCTAssertEqual(Array(bytes.prefix(2)), [0x08, 0x08], "expected ir_version 8 first")
        XCTAssertGreaterThan(bytes.count, 1000)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output.deletingLastPathComponent().path), ["model.onnx"],
                       "a temporary file was left behind")

        guard let python = pythonWithONNXRuntime() else {
            print("ExportTests: skipping the onnxruntime run: no python3 on PATH can import onnx, onnxruntime and numpy")
            throw XCTSkip("no python3 on PATH can import onnx, onnxruntime and numpy")
        }
        let script = """
            import json, sys
            import numpy as np
            import onnx, onnxruntime
            onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)
            session = onnxruntime.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])
            x = np.random.default_rng(0).random((3, 1, 64, 32), dtype=np.float32)
            logits, probabilities = session.run(['logits', 'probabilities'], {'input': x})
            print(json.dumps({'inputs': [i.name for i in session.get_inputs()], 'outputs': [o.name for o in session.get_outputs()],
                              'shape': list(logits.shape), 'sum_error': float(np.abs(probabilities.sum(axis=1) - 1).max()),
                              'finite': bool(np.isfinite(logits).all())}))
            """
        let json = try JSONSerialization.jsonObject(with: Data(runPython(python, script, [output.path]).utf8)) as! [String: Any]
        XCTAssertEqual(json["inputs"] as? [String], ["input"])
        XCTAssertEqual(json["outputs"] as? [String], ["logits", "probabilities"])
        XCTAssertEqual(json["shape"] as? [Int], [3, 2, 64, 32])
        XCTAssertEqual(json["finite"] as? Bool, true)
        XCTAssertLessThan(json["sum_error"] as? Double ?? 1, 1e-5)
    }

    func testExportErrorsAreOneLineWithTheirExitCodes() throws {
        let f = try Fixture.shared()
        let folder = f.root.appendingPathComponent("export-errors")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let output = folder.appendingPathComponent("m.onnx").path
        // 64: no format.
        try expectOneLineError(try unet(["export", f.best]), status: 64, mentioning: "--onnx")
        // 66: no checkpoint.
        let missing = folder.appendingPathComponent("missing.safetensors").path
        try expectOneLineError(try unet(["export", "--onnx", output, missing]), status: 66, mentioning: missing)
        // 65: not a checkpoint; a checkpoint whose head bias is NaN (a diverged run).
        let text = folder.appendingPathComponent("text.safetensors")
        try Data("hello, world\n".utf8).write(to: text)
        try expectOneLineError(try unet(["export", "--onnx", output, text.path]), status: 65, mentioning: text.path)
        let nan = folder.appendingPathComponent("nan.safetensors")
        try poisonTensor("head.bias", of: URL(fileURLWithPath: f.best), writingTo: nan)
        try expectOneLineError(try unet(["export", "--onnx", output, nan.path]), status: 65, mentioning: "head.bias")
        // 73: the output's folder is a file; the output is a folder.
        let file = folder.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        try expectOneLineError(try unet(["export", "--onnx", file.appendingPathComponent("m.onnx").path, f.best]),
                               status: 73, mentioning: "--onnx")
        try expectOneLineError(try unet(["export", "--onnx", folder.path, f.best]), status: 73, mentioning: "--onnx")
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "a failed export wrote its output")
    }
}

/// Copies a safetensors file with every value of tensor `name` set to NaN.
private func poisonTensor(_ name: String, of source: URL, writingTo destination: URL) throws {
    var bytes = try [UInt8](Data(contentsOf: source))
    let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: Any]
    let entry = try XCTUnwrap(header[name] as? [String: Any], "no \(name) in \(source.path)")
    let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
    for i in stride(from: 8 + headerLength + offsets[0], to: 8 + headerLength + offsets[1], by: 4) {
        bytes.replaceSubrange(i..<(i + 4), with: [0x00, 0x00, 0xC0, 0x7F])  // quiet NaN, little-endian
    }
    try Data(bytes).write(to: destination)
}

/// A python3 on PATH that can import onnx, onnxruntime and numpy, or nil.
private func pythonWithONNXRuntime() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for folder in path.split(separator: ":") where !folder.isEmpty {
        let candidate = "\(folder)/python3"
        guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
        if (try? runPython(candidate, "import onnx, onnxruntime, numpy", [])) != nil { return candidate }
    }
    return nil
}

/// Runs a python script; returns its standard output, throws with its standard error on failure.
private func runPython(_ python: String, _ script: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", script] + arguments
    let out = Pipe()
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("python-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errorFile) }
    process.standardOutput = out
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        let errors = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        throw NSError(domain: "python", code: Int(process.terminationStatus),
                      userInfo: [NSLocalizedDescriptionKey: "\(python) failed: \(errors)"])
    }
    return String(decoding: data, as: UTF8.self)
}
