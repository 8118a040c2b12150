import Foundation
import XCTest

/// Runs the built `unet` executable as a subprocess: a tiny training on synthetic data and everything
/// a user does with its run folder, then the documented exit codes and one-line messages of bad inputs.
///
/// One fixture (a 6-slice 64^2 synthetic dataset and a 1-epoch base-4 run) is shared by all tests and
/// built on first use; the whole class takes seconds in release.
final class CLITests: XCTestCase {
    override class func tearDown() {
        Fixture.removeAll()
        super.tearDown()
    }

    // MARK: the run folder

    func testTrainWritesTheWholeRunFolder() throws {
        let f = try Fixture.shared()
        XCTAssertEqual(f.train.status, 0, f.train.stderr)
        XCTAssertTrue(f.train.stdout.contains("EPOCH 1: Avg epoch training cost train "), f.train.stdout)
        XCTAssertTrue(f.train.stdout.contains("jacc val class 0"), f.train.stdout)
        for name in ["config.json", "metrics.csv", "best.safetensors", "last.safetensors", "training-curve.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: f.run.appendingPathComponent(name).path), "missing \(name)")
        }
        let previews = try FileManager.default.contentsOfDirectory(atPath: f.run.appendingPathComponent("previews").path)
        XCTAssertFalse(previews.filter { $0.hasSuffix(".png") }.isEmpty, "no PNG previews")
        let png = try Data(contentsOf: f.run.appendingPathComponent("previews").appendingPathComponent(previews[0]))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])

        let csv = try String(contentsOf: f.run.appendingPathComponent("metrics.csv"), encoding: .utf8)
        let lines = csv.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, csv)
        XCTAssertTrue(lines[0].hasPrefix("epoch,train_cost,val_cost"), csv)
        XCTAssertTrue(lines[1].hasPrefix("1,"), csv)

        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: f.run.appendingPathComponent("config.json"))) as? [String: Any]
        let model = config?["model"] as? [String: Any]
        XCTAssertEqual(model?["baseFilters"] as? Int, 4)
        XCTAssertEqual(config?["validationSlices"] as? [Int], [5])
        let svg = try String(contentsOf: f.run.appendingPathComponent("training-curve.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg"), svg)
    }

    func testSynthWritesTheISBILayout() throws {
        let f = try Fixture.shared()
        let volume = try TinyTIFF.read(f.data.appendingPathComponent("train-volume.tif"))
        let labels = try TinyTIFF.read(f.data.appendingPathComponent("train-labels.tif"))
        let test = try TinyTIFF.read(f.data.appendingPathComponent("test-volume.tif"))
        XCTAssertEqual(volume.count, 6)
        XCTAssertEqual(labels.count, 6)
        XCTAssertEqual(test.count, 2)
        XCTAssertEqual(volume[0].width, 64)
        XCTAssertEqual(volume[0].bitsPerSample, 8)
        XCTAssertEqual(Set(labels.flatMap(\.values)), [0, 255])
    }

    func testPredictWritesFloatProbabilitiesForEveryPage() throws {
        let f = try Fixture.shared()
        let output = f.root.appendingPathComponent("predict/probabilities.tif")
        let previews = f.root.appendingPathComponent("predict/previews")
        let r = try unet(["predict", "--model", f.best, "--input", f.data.appendingPathComponent("test-volume.tif").path,
                          "--output", output.path, "--preview", previews.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let pages = try TinyTIFF.read(output)
        XCTAssertEqual(pages.count, 2)
        for page in pages {
            XCTAssertEqual(page.width, 64)
            XCTAssertEqual(page.height, 64)
            XCTAssertEqual(page.bitsPerSample, 32)
            XCTAssertEqual(page.sampleFormat, 3, "expected IEEE float samples")
            XCTAssertEqual(page.values.count, 64 * 64)
            XCTAssertTrue(page.values.allSatisfy { $0 >= 0 && $0 <= 1 }, "probabilities outside [0, 1]")
            XCTAssertGreaterThan(Set(page.values).count, 10, "constant output")
        }
        let pngs = try FileManager.default.contentsOfDirectory(atPath: previews.path).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(pngs.count, 2)
    }

    func testEvaluateJSONHasEveryScore() throws {
        let f = try Fixture.shared()
        let r = try unet(["evaluate", "--model", f.best, "--data", f.data.path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let keys = Set(object?.keys.map { $0 } ?? [])
        XCTAssertTrue(keys.isSuperset(of: ["accuracy", "jaccard", "mean_jaccard", "dice", "mean_dice", "v_rand", "v_info", "cost"]),
                      "keys: \(keys)")
        let accuracy = try XCTUnwrap(object?["accuracy"] as? Double)
        XCTAssertTrue((0...1).contains(accuracy))
        XCTAssertEqual((object?["jaccard"] as? [Double])?.count, 2)

        let table = try unet(["evaluate", "--model", f.best, "--data", f.data.path, "--val-slices", "4-5"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("mean jaccard"), table.stdout)
        XCTAssertTrue(table.stdout.contains("Slices: 4-5"), table.stdout)
    }

    func testResumeContinuesTheEpochCount() throws {
        let f = try Fixture.shared()
        let resumed = f.root.appendingPathComponent("resumed")
        let r = try unet(["train", "--resume", f.last, "--epochs", "2", "--out", resumed.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("EPOCH 2: "), r.stdout)
        XCTAssertFalse(r.stdout.contains("EPOCH 1: "), r.stdout)
        let csv = try String(contentsOf: resumed.appendingPathComponent("metrics.csv"), encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").map { $0.prefix(2) }.dropFirst(), ["1,", "2,"])
        let info = try unet(["info", resumed.appendingPathComponent("last.safetensors").path])
        XCTAssertTrue(info.stdout.contains("Epoch: 2 of 2"), info.stdout)

        // Nothing left to do: a usage error that says how to extend.
        let again = try unet(["train", "--resume", resumed.appendingPathComponent("last.safetensors").path])
        try expectOneLineError(again, status: 64, mentioning: "--epochs")
        XCTAssertFalse(again.stdout.contains("Brought metrics.csv"), again.stdout)
        // Logs an epoch short of the checkpoint (a kill between the two) are completed on the way.
        let metrics = resumed.appendingPathComponent("metrics.csv")
        try Data(csv.split(separator: "\n").dropLast().joined(separator: "\n").utf8).write(to: metrics)
        let short = try unet(["train", "--resume", resumed.appendingPathComponent("last.safetensors").path])
        try expectOneLineError(short, status: 64, mentioning: "--epochs")
        XCTAssertTrue(short.stdout.contains("Brought metrics.csv and training-curve.svg up to the 2 epoch(s)"), short.stdout)
        XCTAssertEqual(try String(contentsOf: metrics, encoding: .utf8), csv)
        // Settings come from the checkpoint.
        let changed = try unet(["train", "--resume", f.last, "--lr", "0.1"])
        try expectOneLineError(changed, status: 64, mentioning: "--lr")
    }

    func testInfoShowsConfigurationEpochAndMetrics() throws {
        let f = try Fixture.shared()
        let r = try unet(["info", f.last])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("U-Net base 4, depth 2"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Epoch: 1 of 1"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Parameters: "), r.stdout)
        XCTAssertTrue(r.stdout.contains("EPOCH 1: "), r.stdout)
        let json = try unet(["info", f.last, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(object?["epoch"] as? Int, 1)
        XCTAssertEqual((object?["model"] as? [String: Any])?["baseFilters"] as? Int, 4)
        XCTAssertGreaterThan(object?["parameters"] as? Int ?? 0, 1000)
    }

    func testBenchTrainAndInferPrintJSON() throws {
        for mode in ["train", "infer"] {
            let r = try unet(["bench", mode, "--base-filters", "2", "--size", "32", "--runs", "2", "--warmup", "0",
                              "--threads", "1", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            for key in ["median_s", "min_s", "max_s", "peak_rss_mib", "base_filters", "size", "batch", "threads", "mode",
                        "gflop_per_forward", "params", "system"] {
                XCTAssertNotNil(object?[key], "\(mode): no \(key) in \(r.stdout)")
            }
            XCTAssertEqual(object?["mode"] as? String, mode)
            XCTAssertEqual(object?["threads"] as? Int, 1)
        }
        let profiled = try unet(["bench", "train", "--base-filters", "2", "--size", "32", "--runs", "1", "--warmup", "0", "--profile"])
        XCTAssertEqual(profiled.status, 0, profiled.stderr)
        XCTAssertTrue(profiled.stdout.contains("conv forward"), profiled.stdout)
        XCTAssertTrue(profiled.stdout.contains("optimizer"), profiled.stdout)
        let bad = try unet(["bench", "infer", "--size", "30"])
        try expectOneLineError(bad, status: 64, mentioning: "--size")
    }

    func testSystemReportAndVersion() throws {
        let text = try unet(["system", "--threads", "1"])
        XCTAssertEqual(text.status, 0, text.stderr)
        for label in ["CPU:", "vectors:", "OpenBLAS:", "kernel:", "threads:  1 (swift-unet)"] {
            XCTAssertTrue(text.stdout.contains(label), "no \(label) in \(text.stdout)")
        }
        let r = try unet(["system", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["version", "build", "cpu_model", "cores", "cpu_vector_extensions", "openblas_version", "openblas_config",
                    "openblas_core", "openblas_dynamic_arch", "threads", "openblas_threads_per_call"] {
            XCTAssertNotNil(object[key], "no \(key) in \(r.stdout)")
        }
        let core = try XCTUnwrap(object["openblas_core"] as? String)
        XCTAssertTrue((object["openblas_config"] as? String ?? "").contains(core))
        // The environment seen by the program is reported as it is, not changed.
        XCTAssertEqual(object["openblas_coretype_env"] as? String, ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"])

        let version = try unet(["--version"])
        XCTAssertEqual(version.status, 0, version.stderr)
        XCTAssertTrue(version.stdout.hasPrefix("swift-unet \(object["version"] as? String ?? "?")"), version.stdout)
        XCTAssertTrue(version.stdout.contains("core \(core)"), version.stdout)
    }

    /// `train` and `bench` warn once on stderr exactly when OpenBLAS's kernels are narrower than the
    /// CPU's vectors (whatever this machine's setting is), and never otherwise.
    func testNarrowBLASKernelWarningMatchesTheSystemReport() throws {
        let f = try Fixture.shared()
        let system = try unet(["system", "--json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(system.stdout.utf8)) as? [String: Any])
        let narrow: Bool
        if let cpu = object["cpu_vector_bits"] as? Int, let kernel = object["openblas_core_vector_bits"] as? Int {
            narrow = kernel < cpu
        } else {
            narrow = false
        }
        let bench = try unet(["bench", "infer", "--base-filters", "2", "--size", "32", "--runs", "1", "--warmup", "0"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        for (name, stderr) in [("bench", bench.stderr), ("train", f.train.stderr)] {
            let warnings = stderr.components(separatedBy: "unet: warning: OpenBLAS runs").count - 1
            XCTAssertEqual(warnings, narrow ? 1 : 0, "\(name), kernel narrower than the CPU: \(narrow); stderr: \(stderr)")
        }
        XCTAssertTrue(bench.stdout.contains("system: "), bench.stdout)
    }

    /// `bench conv` on a small custom U-Net shape: one JSON row per layer and kernel, with the
    /// forced schedule; bad shape flags exit 64 naming the flag.
    func testBenchConvOnACustomShape() throws {
        let r = try unet(["bench", "conv", "--base-filters", "2", "--size", "32", "--batch", "2", "--repetitions", "1",
                          "--parallelism", "split-gemm", "--threads", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertNotNil((object?["system"] as? [String: Any])?["openblas_core"], r.stdout)
        let rows = object?["rows"] as? [[String: Any]] ?? []
        XCTAssertEqual(rows.count, 19 * 3, "19 convolutions x 3 kernels")
        XCTAssertEqual(rows.first?["cout"] as? Int, 2)
        XCTAssertEqual(rows.first?["batch"] as? Int, 2)
        XCTAssertTrue(rows.contains { $0["name"] as? String == "dec1a" && $0["cin"] as? Int == 6 && $0["h"] as? Int == 32 })
        XCTAssertTrue(rows.allSatisfy { ($0["seconds"] as? Double ?? 0) > 0 })
        try expectOneLineError(try unet(["bench", "conv", "--size", "40"]), status: 64, mentioning: "--size")
        try expectOneLineError(try unet(["bench", "conv", "--batch", "0"]), status: 64, mentioning: "--batch")
        let policy = try unet(["bench", "conv", "--parallelism", "fastest"])
        XCTAssertEqual(policy.status, 64, policy.stderr)
        XCTAssertTrue(policy.stderr.contains("--parallelism"), policy.stderr)
    }

    // MARK: safety

    func testInterruptSavesACheckpointAndPrintsTheResumeCommand() throws {
        let f = try Fixture.shared()
        let run = f.root.appendingPathComponent("interrupted")
        let process = try start(["train", "--data", f.data.path, "--out", run.path, "--epochs", "1000", "--tile", "32",
                                 "--base-filters", "4", "--depth", "2", "--batch-size", "2", "--preview-every", "0"])
        let deadline = Date().addingTimeInterval(60)
        while !(try process.stdoutText()).contains("Run folder:") && process.process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
        }
        Thread.sleep(forTimeInterval: 0.3)
        process.process.interrupt()
        let r = try process.finish()
        XCTAssertEqual(r.status, 130, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        XCTAssertTrue(r.stdout.contains("train --resume \(run.appendingPathComponent("last.safetensors").path)"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.appendingPathComponent("last.safetensors").path))
        let info = try unet(["info", run.appendingPathComponent("last.safetensors").path])
        XCTAssertEqual(info.status, 0, info.stderr)
    }

    func testDivergenceNamesEpochAndBatch() throws {
        let f = try Fixture.shared()
        let r = try unet(["train", "--data", f.data.path, "--out", f.root.appendingPathComponent("diverged").path,
                          "--epochs", "2", "--tile", "32", "--base-filters", "4", "--depth", "2", "--batch-size", "2",
                          "--no-batch-norm", "--lr", "1e30"])
        try expectOneLineError(r, status: 75, mentioning: "epoch 1, batch")
    }

    // MARK: bad inputs

    func testUsageErrorsNameTheFlag() throws {
        let f = try Fixture.shared()
        try expectOneLineError(try unet(["train", "--no-such-flag"]), status: 64, mentioning: "--no-such-flag")
        try expectOneLineError(try unet(["train", "--epochs", "0"]), status: 64, mentioning: "--epochs")
        try expectOneLineError(try unet(["train", "--epochs", "many"]), status: 64, mentioning: "--epochs")
        try expectOneLineError(try unet(["train", "--val-slices", "5-2"]), status: 64, mentioning: "--val-slices")
        try expectOneLineError(try unet(["train", "--padding", "full"]), status: 64, mentioning: "--padding")
        try expectOneLineError(try unet(["train", "--threads", "0"]), status: 64, mentioning: "--threads")
        try expectOneLineError(try unet(["train", "--data", f.data.path, "--val-slices", "3-9",
                                         "--out", f.root.appendingPathComponent("badsplit").path]),
                               status: 64, mentioning: "--val-slices")
        try expectOneLineError(try unet(["predict", "--model", f.best]), status: 64, mentioning: "--input")
        try expectOneLineError(try unet(["frobnicate"]), status: 64, mentioning: "frobnicate")
        // The commands ran in the fixture's folder; the clone's own `runs/` (if any) is none of our business.
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.root.appendingPathComponent("runs").path),
                       "a failed command left a run folder behind")

        let help = try unet(["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("Exit codes"), help.stdout)
        XCTAssertTrue(help.stdout.contains("130"), help.stdout)
    }

    func testMissingInputsExit66() throws {
        let f = try Fixture.shared()
        let missing = f.root.appendingPathComponent("does-not-exist").path
        try expectOneLineError(try unet(["train", "--data", missing]), status: 66, mentioning: missing)
        try expectOneLineError(try unet(["predict", "--model", missing, "--input", f.data.appendingPathComponent("test-volume.tif").path,
                                         "--output", f.root.appendingPathComponent("x.tif").path]), status: 66, mentioning: missing)
        try expectOneLineError(try unet(["predict", "--model", f.best, "--input", missing,
                                         "--output", f.root.appendingPathComponent("x.tif").path]), status: 66, mentioning: missing)
        try expectOneLineError(try unet(["evaluate", "--model", f.best, "--data", f.root.path]), status: 66,
                               mentioning: "train-volume.tif")
        try expectOneLineError(try unet(["info", missing]), status: 66, mentioning: missing)
    }

    func testBadFilesExit65() throws {
        let f = try Fixture.shared()
        let output = f.root.appendingPathComponent("bad/out.tif").path
        // Not a TIFF.
        let text = f.root.appendingPathComponent("not-a-tiff.tif")
        try Data("hello, world\n".utf8).write(to: text)
        try expectOneLineError(try unet(["predict", "--model", f.best, "--input", text.path, "--output", output]),
                               status: 65, mentioning: text.path)

        // Truncated checkpoints: inside the header, and inside the weights.
        let checkpoint = try Data(contentsOf: URL(fileURLWithPath: f.best))
        for (name, length) in [("truncated-header.safetensors", 100), ("truncated-data.safetensors", checkpoint.count - 1000)] {
            let url = f.root.appendingPathComponent(name)
            try checkpoint.prefix(length).write(to: url)
            try expectOneLineError(try unet(["predict", "--model", url.path, "--input", f.data.appendingPathComponent("test-volume.tif").path,
                                             "--output", output]), status: 65, mentioning: url.path)
        }
        try expectOneLineError(try unet(["info", f.root.appendingPathComponent("truncated-header.safetensors").path]),
                               status: 65, mentioning: "truncated-header.safetensors")
        try expectOneLineError(try unet(["train", "--resume", f.root.appendingPathComponent("truncated-data.safetensors").path,
                                         "--epochs", "3", "--out", f.root.appendingPathComponent("bad-resume").path]),
                               status: 65, mentioning: "truncated-data.safetensors")

        // A checkpoint whose weights are of another architecture than its metadata says (base 4 vs 8):
        // the metadata is JSON inside the header, so an equal-length edit keeps the file well-formed.
        let original = "baseFilters\\\":4,"
        let edited = "baseFilters\\\":8,"
        let bytes = [UInt8](checkpoint)
        let needle = [UInt8](original.utf8)
        let at = try XCTUnwrap((0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle },
                               "no \(original) in the checkpoint header")
        var other = bytes
        other.replaceSubrange(at..<(at + needle.count), with: [UInt8](edited.utf8))
        let otherURL = f.root.appendingPathComponent("other-architecture.safetensors")
        try Data(other).write(to: otherURL)
        let r = try unet(["predict", "--model", otherURL.path, "--input", f.data.appendingPathComponent("test-volume.tif").path,
                          "--output", output])
        try expectOneLineError(r, status: 65, mentioning: otherURL.path)
        XCTAssertTrue(r.stderr.contains("do not fit"), r.stderr)

        // Metadata keys renamed (same length, so the header stays well-formed): no model configuration
        // makes it no swift-unet checkpoint; no training configuration makes it impossible to resume.
        func renaming(_ key: String, to replacement: String, name: String) throws -> URL {
            let needle = [UInt8](key.utf8)
            let at = try XCTUnwrap((0...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle },
                                   "no \(key) in the checkpoint header")
            var edited = bytes
            edited.replaceSubrange(at..<(at + needle.count), with: [UInt8](replacement.utf8))
            let url = f.root.appendingPathComponent(name)
            try Data(edited).write(to: url)
            return url
        }
        let noModel = try renaming("\"unet.model\"", to: "\"unet.mode_\"", name: "no-model.safetensors")
        let info = try unet(["info", noModel.path])
        try expectOneLineError(info, status: 65, mentioning: noModel.path)
        XCTAssertTrue(info.stderr.contains("not a swift-unet checkpoint"), info.stderr)
        let noTraining = try renaming("\"unet.training\"", to: "\"unet.trainin_\"", name: "no-training.safetensors")
        let resume = try unet(["train", "--resume", noTraining.path, "--epochs", "3", "--out", f.root.appendingPathComponent("no-training-run").path])
        try expectOneLineError(resume, status: 65, mentioning: noTraining.path)
        XCTAssertTrue(resume.stderr.contains("cannot be resumed"), resume.stderr)

        // Labels that are not 0/255: the volume given as labels.
        let badLabels = f.root.appendingPathComponent("bad-labels")
        try FileManager.default.createDirectory(at: badLabels, withIntermediateDirectories: true)
        for name in ["train-volume.tif", "train-labels.tif"] {
            try? FileManager.default.removeItem(at: badLabels.appendingPathComponent(name))
            try FileManager.default.copyItem(at: f.data.appendingPathComponent("train-volume.tif"), to: badLabels.appendingPathComponent(name))
        }
        try expectOneLineError(try unet(["evaluate", "--model", f.best, "--data", badLabels.path]), status: 65,
                               mentioning: "train-labels.tif")
    }

    func testUnwritableOutputExit73() throws {
        let f = try Fixture.shared()
        let file = f.root.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        try expectOneLineError(try unet(["synth", "--out", file.appendingPathComponent("sub").path, "--slices", "2", "--size", "16"]),
                               status: 73, mentioning: "--out")
        try expectOneLineError(try unet(["predict", "--model", f.best, "--input", f.data.appendingPathComponent("test-volume.tif").path,
                                         "--output", file.appendingPathComponent("p.tif").path]), status: 73, mentioning: "--output")
    }
}

// MARK: - support

/// A finished run of `unet`.
struct CLIRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Asserts the failure contract: the documented status, and exactly one line on stderr that starts with
/// `unet: error:` and names the flag or file.
func expectOneLineError(_ r: CLIRun, status: Int32, mentioning text: String, file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(r.status, status, "stderr: \(r.stderr)\nstdout: \(r.stdout)", file: file, line: line)
    // Warnings (such as the BLAS-kernel one) may come first, each on its own line.
    let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true).filter { !$0.hasPrefix("unet: warning: ") }
    XCTAssertEqual(lines.count, 1, "expected one error line on stderr, got: \(r.stderr)", file: file, line: line)
    XCTAssertTrue(lines.first?.hasPrefix("unet: error: ") ?? false, r.stderr, file: file, line: line)
    XCTAssertTrue(r.stderr.contains(text), "stderr does not mention \(text): \(r.stderr)", file: file, line: line)
    XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr, file: file, line: line)
}

/// The `unet` executable next to the test bundle (`swift test` builds it: CLITests depends on it).
func unetExecutable() throws -> URL {
    var candidates: [URL] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("unet"))
    }
    candidates.append(Bundle.main.bundleURL.appendingPathComponent("unet"))
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("unet"))
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    candidates.append(root.appendingPathComponent(".build/release/unet"))
    candidates.append(root.appendingPathComponent(".build/debug/unet"))
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw FixtureError(message: "the unet executable was not found; looked in \(candidates.map(\.path))")
    }
    return found
}

/// A running `unet` whose output goes to temporary files.
struct StartedProcess {
    var process: Process
    var stdoutURL: URL
    var stderrURL: URL

    func stdoutText() throws -> String { String(decoding: (try? Data(contentsOf: stdoutURL)) ?? Data(), as: UTF8.self) }

    /// Waits for the process; after `timeout` seconds it is killed (SIGKILL, status 1009), so a hung
    /// run fails its test instead of stalling the suite.
    func finish(timeout: Double = 600) throws -> CLIRun {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            XCTFail("\(process.arguments ?? []) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        let out = try stdoutText()
        let err = String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self)
        try? FileManager.default.removeItem(at: stdoutURL)
        try? FileManager.default.removeItem(at: stderrURL)
        let status = process.terminationReason == .exit ? process.terminationStatus : 1000 + process.terminationStatus
        return CLIRun(status: status, stdout: out, stderr: err)
    }
}

/// Starts `unet` with `arguments`; with `launcher` (e.g. `mpirun -np 2`), starts the launcher's
/// first word with its other words, the path of `unet` and `arguments`.
func start(_ arguments: [String], in directory: URL? = nil, launcher: [String]? = nil) throws -> StartedProcess {
    let process = Process()
    if let launcher {
        process.executableURL = URL(fileURLWithPath: launcher[0])
        process.arguments = Array(launcher.dropFirst()) + [try unetExecutable().path] + arguments
    } else {
        process.executableURL = try unetExecutable()
        process.arguments = arguments
    }
    process.currentDirectoryURL = directory ?? (try? Fixture.shared().root) ?? FileManager.default.temporaryDirectory
    var environment = ProcessInfo.processInfo.environment
    environment["UNET_THREADS"] = environment["UNET_THREADS"] ?? "2"
    process.environment = environment
    let id = UUID().uuidString
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("unet-\(id).out")
    let err = FileManager.default.temporaryDirectory.appendingPathComponent("unet-\(id).err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    return StartedProcess(process: process, stdoutURL: out, stderrURL: err)
}

/// Runs `unet` to completion (in the fixture's folder, so a stray default `runs/` would show there).
func unet(_ arguments: [String]) throws -> CLIRun {
    try start(arguments).finish()
}

/// A small synthetic dataset and a 1-epoch run on it, made once per test process.
final class Fixture {
    let root: URL
    let data: URL
    let run: URL
    let train: CLIRun
    var best: String { run.appendingPathComponent("best.safetensors").path }
    var last: String { run.appendingPathComponent("last.safetensors").path }

    nonisolated(unsafe) private static var cached: Result<Fixture, Error>?
    private static let lock = NSLock()

    static func shared() throws -> Fixture {
        lock.lock()
        defer { lock.unlock() }
        if cached == nil { cached = Result { try Fixture() } }
        return try cached!.get()
    }

    /// Deletes the fixture's folder.
    static func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        if case .success(let fixture)? = cached { try? FileManager.default.removeItem(at: fixture.root) }
        cached = nil
    }

    private init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("unet-cli-tests-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        data = root.appendingPathComponent("data")
        run = root.appendingPathComponent("run")
        let root = self.root
        func go(_ arguments: [String]) throws -> CLIRun {
            try start(arguments, in: root).finish()
        }
        let synth = try go(["synth", "--out", data.path, "--slices", "6", "--test-slices", "2", "--size", "64"])
        guard synth.status == 0 else { throw FixtureError(message: "unet synth failed: \(synth.stderr)") }
        train = try go(["train", "--data", data.path, "--out", run.path, "--epochs", "1", "--tile", "32",
                        "--base-filters", "4", "--depth", "2", "--batch-size", "2", "--preview-every", "1"])
        guard train.status == 0 else { throw FixtureError(message: "unet train failed (\(train.status)): \(train.stderr)") }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A minimal TIFF reader for the tests (baseline, uncompressed strips), independent of the library's
/// libtiff-based reader, so the files are checked against the format rather than against themselves.
enum TinyTIFF {
    struct Page {
        var width: Int
        var height: Int
        var bitsPerSample: Int
        var sampleFormat: Int
        var values: [Float]
        /// The samples of a 32-bit unsigned page, exactly (empty for other formats).
        var integers: [UInt32] = []
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func read(_ url: URL) throws -> [Page] {
        let b = [UInt8](try Data(contentsOf: url))
        guard b.count >= 8 else { throw Malformed(description: "\(url.path): too short") }
        let little = b[0] == 0x49
        guard little || b[0] == 0x4D else { throw Malformed(description: "\(url.path): no byte-order mark") }
        func u16(_ o: Int) -> Int { little ? Int(b[o]) | Int(b[o + 1]) << 8 : Int(b[o]) << 8 | Int(b[o + 1]) }
        func u32(_ o: Int) -> Int { little ? u16(o) | u16(o + 2) << 16 : u16(o) << 16 | u16(o + 2) }
        guard u16(2) == 42 else { throw Malformed(description: "\(url.path): not classic TIFF") }
        var pages: [Page] = []
        var ifd = u32(4)
        while ifd != 0 {
            var tags: [Int: [Int]] = [:]
            let count = u16(ifd)
            for e in 0..<count {
                let entry = ifd + 2 + 12 * e
                let tag = u16(entry), type = u16(entry + 2), n = u32(entry + 4)
                guard type == 3 || type == 4 else { continue }  // SHORT and LONG are all the reader needs
                let size = type == 3 ? 2 : 4
                let base = n * size <= 4 ? entry + 8 : u32(entry + 8)
                tags[tag] = (0..<n).map { type == 3 ? u16(base + 2 * $0) : u32(base + 4 * $0) }
            }
            guard let width = tags[256]?.first, let height = tags[257]?.first, let offsets = tags[273],
                  let counts = tags[279] else { throw Malformed(description: "\(url.path): page \(pages.count) lacks tags") }
            guard (tags[259]?.first ?? 1) == 1 else { throw Malformed(description: "\(url.path): compressed") }
            let bits = tags[258]?.first ?? 1, format = tags[339]?.first ?? 1
            var bytes: [UInt8] = []
            for (o, c) in zip(offsets, counts) { bytes += b[o..<(o + c)] }
            var values: [Float] = []
            var integers: [UInt32] = []
            switch (bits, format) {
            case (8, 1): values = bytes.map(Float.init)
            case (32, 1):
                integers = stride(from: 0, to: bytes.count, by: 4).map { i in
                    little ? UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
                        : UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
                }
                values = integers.map(Float.init)
            case (32, 3):
                values = stride(from: 0, to: bytes.count, by: 4).map { i in
                    let raw = little ? UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
                        : UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
                    return Float(bitPattern: raw)
                }
            default: throw Malformed(description: "\(url.path): \(bits)-bit format \(format) not supported by the test reader")
            }
            pages.append(Page(width: width, height: height, bitsPerSample: bits, sampleFormat: format, values: values,
                              integers: integers))
            ifd = u32(ifd + 2 + 12 * count)
        }
        return pages
    }
}
