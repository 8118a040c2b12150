import Foundation
import XCTest

/// `unet export --bioimageio`: the package it writes from a trained checkpoint (its test image cut from
/// the recorded training data; `bioimageio test` passing on it when the command is on PATH) and its
/// one-line errors with their exit codes.
final class BioImageIOExportTests: XCTestCase {
    func testExportWritesAPackageThatBioimageioTestPasses() throws {
        let f = try Fixture.shared()
        let output = f.root.appendingPathComponent("bioimageio/nested/model.zip")
        let r = try unet(["export", "--bioimageio", output.path, f.best, "--softmax", "--author", "Ada Lovelace",
                          "--author", "Charles Babbage", "--name", "Fixture membranes (CLI test)", "--tag", "fixture"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Wrote \(output.path)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("bioimage.io model format 0.5.4"), r.stdout)
        // The fixture: depth 2, same padding, 64 x 64 pages: sides 52 + 4 n, the test image the whole page.
        XCTAssertTrue(r.stdout.contains("y and x 52 + n * 4"), r.stdout)
        XCTAssertTrue(r.stdout.contains("the centre 64 x 64 crop of page 0 of train-volume.tif"), r.stdout)
        XCTAssertFalse(r.stdout.contains("synthetic"), r.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output.deletingLastPathComponent().path), ["model.zip"],
                       "a temporary file was left behind")
        // The entries are stored, so rdf.yaml's text is in the archive as is.
        let bytes = try [UInt8](Data(contentsOf: output))
        XCTAssertEqual(Array(bytes.prefix(4)), [0x50, 0x4B, 0x03, 0x04])
        let text = String(decoding: bytes.prefix(8192), as: UTF8.self)
        for line in ["name: \"Fixture membranes (CLI test)\"", "  - name: \"Ada Lovelace\"", "  - name: \"Charles Babbage\"",
                     "\"swift-unet\", \"fixture\"]", "  - id: \"probabilities\"", "epochs: 1"] {
            XCTAssertTrue(text.contains(line), "rdf.yaml lacks \(line)")
        }

        guard let tool = executableOnPath("bioimageio") else {
            print("BioImageIOExportTests: skipping `bioimageio test`: no `bioimageio` command on PATH (pip install bioimageio.core==0.11.0 onnxruntime 'pydantic<2.12')")
            throw XCTSkip("no `bioimageio` command on PATH")
        }
        let offline = FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") && runProcess("/usr/bin/unshare", ["-n", "true"]).status == 0
        let test = offline ? runProcess("/usr/bin/unshare", ["-n", tool, "test", output.path]) : runProcess(tool, ["test", output.path])
        print("BioImageIOExportTests: `bioimageio test` \(offline ? "offline" : "online") exited \(test.status)")
        XCTAssertEqual(test.status, 0, test.output)
        XCTAssertTrue(test.output.contains("passed"), test.output)
    }

    func testBioImageIOExportErrorsAreOneLineWithTheirExitCodes() throws {
        let f = try Fixture.shared()
        let folder = f.root.appendingPathComponent("bioimageio-errors")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let output = folder.appendingPathComponent("m.zip").path
        // 64: both formats; package flags with --onnx; metadata the spec rejects.
        try expectOneLineError(try unet(["export", "--onnx", output, "--bioimageio", output, f.best]), status: 64, mentioning: "--bioimageio")
        try expectOneLineError(try unet(["export", "--onnx", output, "--author", "A", f.best]), status: 64, mentioning: "--author")
        try expectOneLineError(try unet(["export", "--bioimageio", output, "--name", "x/y", f.best]), status: 64, mentioning: "--name")
        try expectOneLineError(try unet(["export", "--bioimageio", output, "--author", "A/B", f.best]), status: 64, mentioning: "--author")
        try expectOneLineError(try unet(["export", "--bioimageio", output, "--license", "not a license", f.best]), status: 64, mentioning: "--license")
        try expectOneLineError(try unet(["export", "--bioimageio", "", f.best]), status: 64, mentioning: "--bioimageio")
        // 66: no checkpoint. 65: not a checkpoint.
        let missing = folder.appendingPathComponent("missing.safetensors").path
        try expectOneLineError(try unet(["export", "--bioimageio", output, missing]), status: 66, mentioning: missing)
        let text = folder.appendingPathComponent("text.safetensors")
        try Data("hello\n".utf8).write(to: text)
        try expectOneLineError(try unet(["export", "--bioimageio", output, text.path]), status: 65, mentioning: text.path)
        // 73: the output is a folder; its folder is a file.
        try expectOneLineError(try unet(["export", "--bioimageio", folder.path, f.best]), status: 73, mentioning: "--bioimageio")
        let file = folder.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        try expectOneLineError(try unet(["export", "--bioimageio", file.appendingPathComponent("m.zip").path, f.best]),
                               status: 73, mentioning: "--bioimageio")
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "a failed export wrote its output")
    }
}

private func executableOnPath(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Runs a program to its end; its exit status and its standard output and error together.
private func runProcess(_ program: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: file.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: file) }
    guard let handle = try? FileHandle(forWritingTo: file) else { return (-1, "cannot create \(file.path)") }
    process.standardOutput = handle
    process.standardError = handle
    do { try process.run() } catch { return (-1, "\(error)") }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: (try? Data(contentsOf: file)) ?? Data(), as: UTF8.self))
}
