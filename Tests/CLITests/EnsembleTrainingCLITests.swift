import Foundation
import XCTest

/// `unet train --members K`: the members as separate processes, the ensemble's score, the folder as
/// a `--model`, resume and Ctrl-C, and the errors.
final class EnsembleTrainingCLITests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try Fixture.shared().root.appendingPathComponent("ensembles-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// A tiny network's training flags on the fixture's data.
    func trainFlags(epochs: Int) throws -> [String] {
        ["--data", try Fixture.shared().data.path, "--epochs", "\(epochs)", "--tile", "32", "--base-filters", "4",
         "--depth", "2", "--batch-size", "2", "--preview-every", "0"]
    }

    func scores(_ run: CLIRun) throws -> [String: Any] {
        XCTAssertEqual(run.status, 0, run.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout)
    }

    func testMembersTrainAsSeparateRunsAndTheFolderScoresAsTheirEnsemble() throws {
        let ensemble = folder.appendingPathComponent("pair")
        let run = try unet(["train"] + trainFlags(epochs: 2) + ["--members", "2", "--seed=3", "--out", ensemble.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        for line in ["[seed-3] EPOCH 2:", "[seed-4] EPOCH 2:", "Scoring the ensemble of 2 members", "mean jaccard",
                     "predict --model \(ensemble.path)"] {
            XCTAssertTrue(run.stdout.contains(line), "no '\(line)' in:\n\(run.stdout)")
        }
        for member in ["seed-3", "seed-4"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: ensemble.appendingPathComponent("\(member)/best.safetensors").path), member)
        }

        // A member is exactly the run its seed gives alone, with its share of the threads (1 of 2).
        let alone = folder.appendingPathComponent("seed-4-alone")
        let single = try unet(["train"] + trainFlags(epochs: 2) + ["--seed", "4", "--threads", "1", "--out", alone.path])
        XCTAssertEqual(single.status, 0, single.stderr)
        XCTAssertEqual(try metricsWithoutSeconds(alone), try metricsWithoutSeconds(ensemble.appendingPathComponent("seed-4")))
        XCTAssertEqual(try differingTensors(alone.appendingPathComponent("best.safetensors"),
                                            ensemble.appendingPathComponent("seed-4/best.safetensors")), [])

        // The folder as --model is the two best checkpoints as --model flags; evaluation.json holds the score.
        let data = try Fixture.shared().data.path
        let byFolder = try scores(unet(["evaluate", "--model", ensemble.path, "--data", data, "--json"]))
        let byFiles = try scores(unet(["evaluate", "--model", ensemble.appendingPathComponent("seed-3/best.safetensors").path,
                                       "--model", ensemble.appendingPathComponent("seed-4/best.safetensors").path,
                                       "--data", data, "--json"]))
        let saved = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: ensemble.appendingPathComponent("evaluation.json"))) as? [String: Any])
        let jaccard = try XCTUnwrap(byFolder["mean_jaccard"] as? Double)
        XCTAssertEqual(byFiles["mean_jaccard"] as? Double, jaccard)
        XCTAssertEqual(saved["mean_jaccard"] as? Double, jaccard)
        XCTAssertEqual(saved["v_rand"] as? Double, byFolder["v_rand"] as? Double)

        let volume = try Fixture.shared().data.appendingPathComponent("test-volume.tif").path
        let predicted = folder.appendingPathComponent("p.tif")
        let predict = try unet(["predict", "--model", ensemble.path, "--input", volume, "--output", predicted.path])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        XCTAssertTrue(predict.stdout.contains("an ensemble of 2 models"), predict.stdout)
        // A run folder stands for its best checkpoint.
        let runFolder = try unet(["evaluate", "--model", alone.path, "--data", data, "--json"])
        let runFile = try unet(["evaluate", "--model", alone.appendingPathComponent("best.safetensors").path, "--data", data, "--json"])
        XCTAssertEqual(try scores(runFolder)["mean_jaccard"] as? Double, try scores(runFile)["mean_jaccard"] as? Double)

        // `unet info` of the folder: every member and the saved score; of a run folder: its last checkpoint.
        let info = try unet(["info", ensemble.path])
        XCTAssertEqual(info.status, 0, info.stderr)
        for line in ["Ensemble: \(ensemble.path), 2 members", "seed-3: U-Net base 4", "seed-4: U-Net base 4", "epoch 2 of 2",
                     String(format: "Ensemble score (%@): mean Jaccard %.6f", ensemble.appendingPathComponent("evaluation.json").path, jaccard)] {
            XCTAssertTrue(info.stdout.contains(line), "no '\(line)' in:\n\(info.stdout)")
        }
        let infoJSON = try scores(unet(["info", ensemble.path, "--json"]))
        XCTAssertEqual((infoJSON["members"] as? [[String: Any]])?.map { $0["epoch"] as? Int }, [2, 2])
        XCTAssertEqual((infoJSON["evaluation"] as? [String: Any])?["mean_jaccard"] as? Double, jaccard)
        let runInfo = try unet(["info", alone.path])
        XCTAssertTrue(runInfo.stdout.contains("Checkpoint: \(alone.appendingPathComponent("last.safetensors").path)"), runInfo.stdout)

        // Continue both members; one without checkpoints starts again as it first started.
        for file in ["best.safetensors", "last.safetensors"] {
            try FileManager.default.removeItem(at: ensemble.appendingPathComponent("seed-4/\(file)"))
        }
        let resumed = try unet(["train", "--resume", ensemble.path, "--epochs", "3"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("[seed-3] Resuming"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("[seed-4] EPOCH 3:"), resumed.stdout)
        XCTAssertEqual(try metricsWithoutSeconds(ensemble.appendingPathComponent("seed-3")).count, 4)
        let straight = folder.appendingPathComponent("seed-4-three")
        XCTAssertEqual(try unet(["train"] + trainFlags(epochs: 3) + ["--seed", "4", "--threads", "1", "--out", straight.path]).status, 0)
        XCTAssertEqual(try metricsWithoutSeconds(straight), try metricsWithoutSeconds(ensemble.appendingPathComponent("seed-4")))

        let again = try unet(["train", "--resume", ensemble.path, "--epochs", "3"])
        try expectOneLineError(again, status: 64, mentioning: "--epochs")
        let taken = try unet(["train"] + trainFlags(epochs: 1) + ["--members", "2", "--out", ensemble.path])
        try expectOneLineError(taken, status: 64, mentioning: "--resume \(ensemble.path)")
    }

    func testCtrlCStopsEveryMemberWithACheckpoint() throws {
        let ensemble = folder.appendingPathComponent("stopped")
        let process = try start(["train"] + trainFlags(epochs: 100_000) + ["--members", "2", "--out", ensemble.path])
        XCTAssertTrue(try process.waitForOutput("[seed-1] EPOCH 1:", timeout: 120))
        XCTAssertTrue(try process.waitForOutput("[seed-0] EPOCH 1:", timeout: 120))
        process.process.interrupt()
        let r = try process.finish()
        XCTAssertEqual(r.status, 130, "stdout: \(r.stdout)\nstderr: \(r.stderr)")
        XCTAssertTrue(r.stdout.contains("train --resume \(ensemble.path)"), r.stdout)
        for member in ["seed-0", "seed-1"] {
            let last = ensemble.appendingPathComponent("\(member)/last.safetensors")
            XCTAssertEqual(try unet(["info", last.path]).status, 0, member)
        }
    }

    func testMembersSaveAndStopWhenTheirParentIsKilled() throws {
        let ensemble = folder.appendingPathComponent("orphaned")
        let process = try start(["train"] + trainFlags(epochs: 100_000) + ["--members", "2", "--out", ensemble.path])
        // A member prints its epoch line before it saves; by epoch 2's line, epoch 1's checkpoint is there.
        XCTAssertTrue(try process.waitForOutput("[seed-1] EPOCH 2:", timeout: 120))
        XCTAssertTrue(try process.waitForOutput("[seed-0] EPOCH 2:", timeout: 120))
        let members = childProcesses(of: process.process.processIdentifier)
        XCTAssertEqual(members.count, 2, "the ensemble's processes: \(members)")
        _ = try process.kill9()
        for pid in members {
            XCTAssertTrue(waitForEnd(of: pid, timeout: 120), "member \(pid) still runs after its parent's kill -9")
        }
        // Each member saved its weights when it stopped, after its last epoch's logs. At an epoch's end
        // the checkpoint is written before the logs, so a member that died mid-epoch (killed by
        // writing to its parent's closed pipe) would leave metrics.csv the newer file.
        for member in ["seed-0", "seed-1"] {
            let run = ensemble.appendingPathComponent(member)
            let last = try modificationDate(run.appendingPathComponent("last.safetensors"))
            let logs = try modificationDate(run.appendingPathComponent("metrics.csv"))
            XCTAssertGreaterThan(last, logs, "\(member) did not save a checkpoint when its parent ended")
        }
        XCTAssertEqual(try temporaryFiles(under: ensemble), [])

        // The ensemble resumes from those checkpoints.
        let info = try scores(unet(["info", ensemble.path, "--json"]))
        let done = try XCTUnwrap((info["members"] as? [[String: Any]])?.compactMap { $0["epoch"] as? Int })
        XCTAssertEqual(done.count, 2)
        let resumed = try unet(["train", "--resume", ensemble.path, "--epochs", "\(done.max()! + 1)"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("Scoring the ensemble of 2 members"), resumed.stdout)
    }

    func testBadFlagsAndFoldersGiveClearErrors() throws {
        let f = try Fixture.shared()
        try expectOneLineError(try unet(["train", "--members", "0"]), status: 64, mentioning: "--members 0")
        try expectOneLineError(try unet(["train", "--resume", f.last, "--members", "2"]), status: 64, mentioning: "--members")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try expectOneLineError(try unet(["evaluate", "--model", folder.path, "--data", f.data.path]), status: 66,
                               mentioning: "ensemble.json")
        try expectOneLineError(try unet(["info", folder.path]), status: 66, mentioning: "ensemble.json")

        // A manifest naming a member outside its folder, or not JSON at all, is refused by name.
        let manifest = folder.appendingPathComponent("ensemble.json")
        try Data("""
            {"format":"unet-ensemble","version":1,"members":["../x"],"seeds":[0],"trainArguments":[["train"]]}
            """.utf8).write(to: manifest)
        try expectOneLineError(try unet(["evaluate", "--model", folder.path, "--data", f.data.path]), status: 65,
                               mentioning: manifest.path)
        try Data("{\"format\":".utf8).write(to: manifest)
        try expectOneLineError(try unet(["predict", "--model", folder.path, "--input", "x.tif", "--output", "y.tif"]),
                               status: 65, mentioning: manifest.path)
        try expectOneLineError(try unet(["train", "--resume", folder.path]), status: 65, mentioning: manifest.path)
        try expectOneLineError(try unet(["info", folder.path]), status: 65, mentioning: manifest.path)
        try expectOneLineError(try unet(["train", "--resume", folder.path, "--out", "elsewhere"]), status: 64, mentioning: "--out")
    }
}
