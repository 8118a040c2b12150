import Foundation
import NN
import XCTest

/// Fault injection on `unet train` (issue 17), sized for CI: `kill -9` at three moments of a run with
/// `--resume` after each, and input stacks truncated or removed while a run trains and before a
/// resume. `tools/fault_kill9.sh` is the 20-kill version.
final class KillAndResumeTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-faults-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    static let epochs = 8

    /// A small run on `data` (the fixture's 64^2 slices) with dropout and previews, so that every
    /// source of randomness and every kind of file the trainer writes is involved.
    func trainArguments(data: URL, out: URL) -> [String] {
        ["train", "--data", data.path, "--out", out.path, "--epochs", "\(Self.epochs)", "--tile", "32",
         "--base-filters", "4", "--depth", "2", "--batch-size", "2", "--dropout", "0.3", "--preview-every", "1",
         "--seed", "3"]
    }

    /// Starts the run in `run`: a resume when it has a last checkpoint, otherwise a new run.
    func startOrResume(data: URL, run: URL) throws -> StartedProcess {
        let last = run.appendingPathComponent("last.safetensors")
        if FileManager.default.fileExists(atPath: last.path) {
            return try start(["train", "--resume", last.path, "--epochs", "\(Self.epochs)"], in: folder)
        }
        return try start(trainArguments(data: data, out: run), in: folder)
    }

    /// After a kill: every checkpoint present reads whole and `unet info` shows it; metrics.csv is not
    /// ahead of last.safetensors. Returns the epoch of last.safetensors (0 when there is none).
    func checkAfterKill(_ run: URL, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        var lastEpoch = 0
        for name in ["best.safetensors", "last.safetensors"] {
            let path = run.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            XCTAssertNoThrow(try SafeTensors.read(from: path), "\(name) does not load after a kill", file: file, line: line)
            let info = try unet(["info", "--json", path])
            XCTAssertEqual(info.status, 0, "unet info \(name): \(info.stderr)", file: file, line: line)
            let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any]
            if name == "last.safetensors" { lastEpoch = object?["epoch"] as? Int ?? -1 }
        }
        let metrics = run.appendingPathComponent("metrics.csv")
        if FileManager.default.fileExists(atPath: metrics.path) {
            let rows = try String(contentsOf: metrics, encoding: .utf8).split(separator: "\n").count - 1
            XCTAssertLessThanOrEqual(rows, lastEpoch, "metrics.csv is ahead of last.safetensors", file: file, line: line)
        }
        return lastEpoch
    }

    func testKill9ThreeTimesThenResumeReachesTheUninterruptedWeights() throws {
        let data = try Fixture.shared().data
        let reference = folder.appendingPathComponent("reference")
        let straight = try start(trainArguments(data: data, out: reference), in: folder).finish()
        XCTAssertEqual(straight.status, 0, straight.stderr)

        let run = folder.appendingPathComponent("killed")
        var epochs: [Int] = []
        // 1: at a random moment of start-up or the first epochs.
        var p = try startOrResume(data: data, run: run)
        XCTAssertTrue(try p.waitForOutput("Run folder:"), (try? p.stdoutText()) ?? "")
        Thread.sleep(forTimeInterval: Double.random(in: 0...0.2))
        XCTAssertEqual(try p.kill9().status, 1009, "the run ended before the first kill")
        epochs.append(try checkAfterKill(run))
        // 2: as soon as an epoch is announced, while its checkpoints and previews are being written.
        p = try startOrResume(data: data, run: run)
        XCTAssertTrue(try p.waitForOutput("EPOCH "), (try? p.stdoutText()) ?? "")
        XCTAssertEqual(try p.kill9().status, 1009, "the run ended before the second kill")
        epochs.append(try checkAfterKill(run))
        // 3: at a random moment after the next start (a resume when an epoch was saved).
        p = try startOrResume(data: data, run: run)
        XCTAssertTrue(try p.waitForOutput("Run folder:"), (try? p.stdoutText()) ?? "")
        Thread.sleep(forTimeInterval: Double.random(in: 0...0.2))
        let third = try p.kill9()
        if third.status != 1009 { XCTAssertEqual(third.status, 0, third.stderr) }   // it may have finished
        epochs.append(try checkAfterKill(run))

        // Resume to the end: the same tensors (weights, batch-norm statistics, Adam state) bit for bit,
        // the same metrics, and no temporary file left by the kills.
        if third.status != 0 {
            let rest = try startOrResume(data: data, run: run).finish()
            XCTAssertEqual(rest.status, 0, "stdout: \(rest.stdout)\nstderr: \(rest.stderr)")
        }
        for name in ["last.safetensors", "best.safetensors"] {
            XCTAssertEqual(try differingTensors(reference.appendingPathComponent(name), run.appendingPathComponent(name)), [],
                           "\(name) after kills at epochs \(epochs) differs from the uninterrupted run's")
        }
        XCTAssertEqual(try metricsWithoutSeconds(run), try metricsWithoutSeconds(reference))
        XCTAssertEqual(try temporaryFiles(under: run), [])
    }

    func testInputsTruncatedDuringTrainingAreNotReadAgain() throws {
        let data = folder.appendingPathComponent("data")
        try FileManager.default.copyItem(at: try Fixture.shared().data, to: data)
        let reference = folder.appendingPathComponent("reference")
        XCTAssertEqual(try start(trainArguments(data: data, out: reference), in: folder).finish().status, 0)

        // The trainer holds the slices in memory: cutting the volume in half and deleting the labels
        // after the first epoch changes nothing in the run.
        let run = folder.appendingPathComponent("run")
        let p = try start(trainArguments(data: data, out: run), in: folder)
        XCTAssertTrue(try p.waitForOutput("EPOCH 1:"), (try? p.stdoutText()) ?? "")
        let volume = data.appendingPathComponent("train-volume.tif"), labels = data.appendingPathComponent("train-labels.tif")
        let intactVolume = try Data(contentsOf: volume), intactLabels = try Data(contentsOf: labels)
        try intactVolume.prefix(intactVolume.count / 2).write(to: volume)
        try FileManager.default.removeItem(at: labels)
        XCTAssertTrue(p.process.isRunning, "the run ended before its inputs were damaged")
        let r = try p.finish()
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try differingTensors(reference.appendingPathComponent("last.safetensors"),
                                            run.appendingPathComponent("last.safetensors")), [])

        // A resume reads the inputs again: each damage gets its clear error and exit code, and the
        // run folder is left as it was.
        let before = try snapshot(run)
        let resume = ["train", "--resume", run.appendingPathComponent("last.safetensors").path, "--epochs", "\(Self.epochs + 1)"]
        try intactLabels.write(to: labels)
        try expectOneLineError(try unet(resume), status: 65, mentioning: "train-volume.tif")
        try intactVolume.write(to: volume)
        try FileManager.default.removeItem(at: labels)
        try expectOneLineError(try unet(resume), status: 66, mentioning: "train-labels.tif")
        try Data().write(to: labels)
        try expectOneLineError(try unet(resume), status: 65, mentioning: "train-labels.tif")
        try FileManager.default.removeItem(at: data)
        try expectOneLineError(try unet(resume), status: 66, mentioning: data.path)
        XCTAssertEqual(try snapshot(run), before, "a failed resume changed the run folder")
    }
}
