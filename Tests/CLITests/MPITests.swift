import Foundation
import NN
import XCTest

/// `unet` as ranks of an Open MPI job (`mpirun -np 2`): data-parallel training and sharded
/// prediction give what one process gives, and a failing rank ends the job without a corrupt file.
final class MPITests: XCTestCase {
    /// `mpirun` with the flags that let 2 ranks run as root on a 2-core machine.
    func mpirun(_ ranks: Int) throws -> [String] {
        let candidates = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"]
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("mpirun not found (install openmpi-bin)")
        }
        return [path, "--allow-run-as-root", "--oversubscribe", "-np", String(ranks)]
    }

    func folder(_ name: String) throws -> URL {
        let url = try Fixture.shared().root.appendingPathComponent("mpi-\(name)")
        try? FileManager.default.removeItem(at: url)
        return url
    }

    /// The largest difference between two checkpoints' tensors of the same names.
    func largestDifference(_ a: URL, _ b: URL) throws -> Float {
        let x = try SafeTensors.read(from: a.path), y = try SafeTensors.read(from: b.path)
        XCTAssertEqual(x.names, y.names)
        var largest: Float = 0
        for name in x.names where !name.hasPrefix("optimizer.") {
            let p = x[name]!.scalars, q = y[name]!.scalars
            XCTAssertEqual(p.count, q.count, name)
            for i in p.indices { largest = max(largest, abs(p[i] - q[i])) }
        }
        return largest
    }

    func trainArguments(data: URL, out: URL, extra: [String] = []) -> [String] {
        ["train", "--data", data.path, "--out", out.path, "--epochs", "2", "--tile", "32", "--base-filters", "4",
         "--depth", "2", "--batch-size", "4", "--val-slices", "4-5", "--no-augment", "--threads", "1"] + extra
    }

    /// Two ranks on halves of each batch take the same steps as one process on the whole batch
    /// (without batch norm, whose statistics are per rank by default).
    func testTwoRanksTrainLikeOneProcess() throws {
        let f = try Fixture.shared()
        let one = try folder("one"), two = try folder("two")
        let single = try start(trainArguments(data: f.data, out: one, extra: ["--no-batch-norm"])).finish()
        XCTAssertEqual(single.status, 0, single.stderr)
        let job = try start(trainArguments(data: f.data, out: two, extra: ["--no-batch-norm"]), launcher: try mpirun(2)).finish()
        XCTAssertEqual(job.status, 0, job.stderr)
        XCTAssertEqual(job.stdout.components(separatedBy: "EPOCH 2:").count - 1, 1, "rank 0 alone prints: \(job.stdout)")
        XCTAssertTrue(job.stdout.contains("2 processes x 1 thread"), job.stdout)
        let difference = try largestDifference(one.appendingPathComponent("last.safetensors"),
                                               two.appendingPathComponent("last.safetensors"))
        XCTAssertLessThan(difference, 1e-4, "weights after 2 epochs differ by \(difference)")
        // The run folder holds what one process writes, once.
        for name in ["config.json", "metrics.csv", "best.safetensors", "last.safetensors", "training-curve.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: two.appendingPathComponent(name).path), name)
        }
    }

    /// With a warmup, a schedule and a moving average of the weights, two ranks still reach the
    /// weights (and the average, which the checkpoint holds under the model's names) of one process.
    func testTwoRanksWithTheRecipeTrainLikeOneProcess() throws {
        let f = try Fixture.shared()
        let recipe = ["--no-batch-norm", "--ema", "0.9", "--warmup-epochs", "1", "--schedule", "cosine"]
        let one = try folder("recipe-one"), two = try folder("recipe-two")
        let single = try start(trainArguments(data: f.data, out: one, extra: recipe)).finish()
        XCTAssertEqual(single.status, 0, single.stderr)
        let job = try start(trainArguments(data: f.data, out: two, extra: recipe), launcher: try mpirun(2)).finish()
        XCTAssertEqual(job.status, 0, job.stderr)
        let a = try SafeTensors.read(from: one.appendingPathComponent("last.safetensors").path)
        let b = try SafeTensors.read(from: two.appendingPathComponent("last.safetensors").path)
        XCTAssertEqual(a.metadata["optimizer.ema.updates"], b.metadata["optimizer.ema.updates"])
        XCTAssertTrue(a.names.contains { $0.hasPrefix("optimizer.ema.raw.") })
        let difference = try largestDifference(one.appendingPathComponent("last.safetensors"),
                                               two.appendingPathComponent("last.safetensors"))
        XCTAssertLessThan(difference, 1e-4, "averaged weights after 2 epochs differ by \(difference)")
    }

    /// With synchronized batch norm, two ranks train the batch-norm U-Net as one process does.
    func testTwoRanksWithSyncBatchNormTrainLikeOneProcess() throws {
        let f = try Fixture.shared()
        let one = try folder("bn-one"), two = try folder("bn-two")
        let single = try start(trainArguments(data: f.data, out: one)).finish()
        XCTAssertEqual(single.status, 0, single.stderr)
        let job = try start(trainArguments(data: f.data, out: two, extra: ["--sync-batch-norm"]), launcher: try mpirun(2)).finish()
        XCTAssertEqual(job.status, 0, job.stderr)
        let difference = try largestDifference(one.appendingPathComponent("last.safetensors"),
                                               two.appendingPathComponent("last.safetensors"))
        XCTAssertLessThan(difference, 1e-4, "weights and running statistics after 2 epochs differ by \(difference)")
        // Per-rank statistics (the default) normalize differently.
        let perRank = try folder("bn-per-rank")
        let unsynchronized = try start(trainArguments(data: f.data, out: perRank), launcher: try mpirun(2)).finish()
        XCTAssertEqual(unsynchronized.status, 0, unsynchronized.stderr)
        XCTAssertGreaterThan(try largestDifference(one.appendingPathComponent("last.safetensors"),
                                                   perRank.appendingPathComponent("last.safetensors")), 1e-3)
    }

    /// Pages dealt over two ranks and written by rank 0 give the file one process writes, byte for
    /// byte; evaluation over two ranks gives the same scores.
    func testShardedPredictAndEvaluateEqualOneProcess() throws {
        let f = try Fixture.shared()
        let out = try folder("predict")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let input = f.data.appendingPathComponent("train-volume.tif").path   // 6 pages
        func predict(_ name: String, _ launcher: [String]?) throws -> Data {
            let path = out.appendingPathComponent(name).path
            let r = try start(["predict", "--model", f.best, "--input", input, "--output", path, "--threads", "1"],
                              launcher: launcher).finish()
            XCTAssertEqual(r.status, 0, r.stderr)
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        let single = try predict("one.tif", nil), sharded = try predict("two.tif", try mpirun(2))
        XCTAssertFalse(single.isEmpty)
        XCTAssertEqual(single, sharded, "sharded prediction differs from one process's")

        func evaluate(_ launcher: [String]?) throws -> [String: Any] {
            let r = try start(["evaluate", "--model", f.best, "--data", f.data.path, "--all", "--json", "--threads", "1"],
                              launcher: launcher).finish()
            XCTAssertEqual(r.status, 0, r.stderr)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        }
        let one = try evaluate(nil), two = try evaluate(try mpirun(2))
        for key in ["accuracy", "mean_jaccard", "mean_dice", "cost", "v_rand", "v_info"] {
            let a = try XCTUnwrap(one[key] as? Double, key), b = try XCTUnwrap(two[key] as? Double, key)
            XCTAssertEqual(a, b, accuracy: 1e-9, key)
        }
    }

    /// A run trained by two ranks resumes in one process (and the other way round) and goes on from
    /// where it stopped: a checkpoint does not depend on the number of ranks.
    /// A model with 2.5D context, whose ranks each read their pages' neighbours, predicts over two
    /// ranks the file one process writes.
    func testShardedPredictWithContextEqualsOneProcess() throws {
        let f = try Fixture.shared()
        let out = try folder("context")
        let train = try start(trainArguments(data: f.data, out: out, extra: ["--context-slices", "2", "--epochs", "1"])).finish()
        XCTAssertEqual(train.status, 0, train.stderr)
        let input = f.data.appendingPathComponent("train-volume.tif").path   // 6 pages
        func predict(_ name: String, _ launcher: [String]?) throws -> Data {
            let path = out.appendingPathComponent(name).path
            let r = try start(["predict", "--model", out.appendingPathComponent("last.safetensors").path, "--input", input,
                               "--output", path, "--threads", "1"], launcher: launcher).finish()
            XCTAssertEqual(r.status, 0, r.stderr)
            return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        let single = try predict("one.tif", nil), sharded = try predict("two.tif", try mpirun(2))
        XCTAssertFalse(single.isEmpty)
        XCTAssertEqual(single, sharded, "sharded prediction with context differs from one process's")
    }

    func testResumeWithAnotherNumberOfRanks() throws {
        let f = try Fixture.shared()
        let out = try folder("resume")
        var args = trainArguments(data: f.data, out: out)
        args[args.firstIndex(of: "--epochs")! + 1] = "1"
        let first = try start(args, launcher: try mpirun(2)).finish()
        XCTAssertEqual(first.status, 0, first.stderr)
        let last = out.appendingPathComponent("last.safetensors").path
        let second = try start(["train", "--resume", last, "--epochs", "2", "--threads", "1"]).finish()
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("EPOCH 2:"), second.stdout)
        let third = try start(["train", "--resume", last, "--epochs", "3", "--threads", "1"], launcher: try mpirun(2)).finish()
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertTrue(third.stdout.contains("EPOCH 3:") && !third.stdout.contains("EPOCH 2:"), third.stdout)
        let info = try unet(["info", last, "--json"])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["epoch"] as? Int, 3)
    }

    /// A batch smaller than the number of ranks is refused with one message from rank 0.
    func testBatchSmallerThanRanksIsRefused() throws {
        let f = try Fixture.shared()
        let r = try start(trainArguments(data: f.data, out: try folder("small"), extra: ["--batch-size", "1"]),
                          launcher: try mpirun(2)).finish()
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("cannot be split over 2 processes"), r.stderr)
    }

    /// A rank killed mid-run ends the job with a non-zero status, every checkpoint left loads, and
    /// the run resumes from the last one.
    func testKilledRankEndsTheJobWithoutACorruptCheckpoint() throws {
        try killOneRankThenResume(victim: 1, folderName: "killed")
    }

    /// The same with rank 0 killed, the rank that writes the checkpoints: a write it was in the middle
    /// of leaves at most a temporary file, never a partial checkpoint, and the resume removes it.
    func testKilledLeaderEndsTheJobWithoutACorruptCheckpoint() throws {
        try killOneRankThenResume(victim: 0, folderName: "killed-leader")
    }

    func killOneRankThenResume(victim: Int, folderName: String) throws {
        let f = try Fixture.shared()
        let out = try folder(folderName)
        let job = try start(["train", "--data", f.data.path, "--out", out.path, "--epochs", "200", "--tile", "32",
                             "--base-filters", "4", "--depth", "2", "--batch-size", "2", "--val-slices", "4-5",
                             "--threads", "1"], launcher: try mpirun(2))
        // Wait for the first checkpoint, then kill one rank.
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: out.appendingPathComponent("last.safetensors").path) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
        }
        Thread.sleep(forTimeInterval: 0.3)
        let ranks = childProcesses(of: job.process.processIdentifier).filter { name(of: $0) == "unet" }
        XCTAssertEqual(ranks.map(rank(of:)).sorted { ($0 ?? -1) < ($1 ?? -1) }, [0, 1], "expected ranks 0 and 1 under mpirun")
        if let pid = ranks.first(where: { rank(of: $0) == victim }) { kill(pid, SIGKILL) }
        let r = try job.finish()
        XCTAssertNotEqual(r.status, 0, "the job went on after rank \(victim) died")
        for name in ["last.safetensors", "best.safetensors"] {
            let path = out.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let info = try unet(["info", path])
            XCTAssertEqual(info.status, 0, "\(name) does not load: \(info.stderr)")
        }
        let temporaries = { try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.contains(".tmp") } }
        if victim != 0 { XCTAssertEqual(try temporaries(), [], "temporary files left behind") }

        // The run goes on from rank 0's last checkpoint, here as one process.
        let last = out.appendingPathComponent("last.safetensors")
        let info = try unet(["info", last.path, "--json"])
        XCTAssertEqual(info.status, 0, info.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let done = try XCTUnwrap(summary["epoch"] as? Int, info.stdout)
        let resumed = try unet(["train", "--resume", last.path, "--epochs", "\(done + 1)", "--threads", "1"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("EPOCH \(done + 1):"), resumed.stdout)
        XCTAssertEqual(try temporaries(), [], "temporary files left after the resume")
    }

    /// The MPI rank of process `pid`, from the `OMPI_COMM_WORLD_RANK` that Open MPI sets in its environment.
    func rank(of pid: Int32) -> Int? {
        guard let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        let prefix = "OMPI_COMM_WORLD_RANK="
        for entry in environment.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            if text.hasPrefix(prefix) { return Int(text.dropFirst(prefix.count)) }
        }
        return nil
    }

    func name(of pid: Int32) -> String {
        ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
