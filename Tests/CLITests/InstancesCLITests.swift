import Foundation
import XCTest

/// `unet evaluate --store-threshold`, `unet predict --instances` and `unet evaluate --summary`
/// through the executable.
final class InstancesCLITests: XCTestCase {
    /// A copy of the fixture's best checkpoint, so storing a threshold leaves the fixture alone.
    func checkpointCopy(_ name: String) throws -> String {
        let f = try Fixture.shared()
        let copy = f.root.appendingPathComponent("\(name).safetensors")
        try? FileManager.default.removeItem(at: copy)
        try FileManager.default.copyItem(atPath: f.best, toPath: copy.path)
        return copy.path
    }

    func testStoredThresholdDrivesInstanceOutput() throws {
        let f = try Fixture.shared()
        let model = try checkpointCopy("instances")
        let volume = f.data.appendingPathComponent("test-volume.tif").path
        let out = f.root.appendingPathComponent("instances")

        // No threshold yet: the error names both remedies.
        let missing = try unet(["predict", "--model", model, "--input", volume, "--output", out.appendingPathComponent("p.tif").path,
                                "--instances", out.appendingPathComponent("i.tif").path])
        try expectOneLineError(missing, status: 64, mentioning: "--store-threshold")
        XCTAssertTrue(missing.stderr.contains("--threshold"), missing.stderr)

        let evaluate = try unet(["evaluate", "--model", model, "--data", f.data.path, "--store-threshold"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        XCTAssertTrue(evaluate.stdout.contains("V_rand threshold"), evaluate.stdout)
        XCTAssertTrue(evaluate.stdout.contains("Stored threshold"), evaluate.stdout)
        let info = try unet(["info", model])
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("Instance threshold: "), info.stdout)
        XCTAssertTrue(info.stdout.contains("Recipe: constant lr, no EMA"), info.stdout)

        let instances = out.appendingPathComponent("instances.tif"), preview = out.appendingPathComponent("instances.png")
        let predict = try unet(["predict", "--model", model, "--input", volume, "--output", out.appendingPathComponent("p.tif").path,
                                "--instances", instances.path, "--instances-preview", preview.path])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        XCTAssertTrue(predict.stdout.contains("stored in the checkpoint"), predict.stdout)
        let pages = try TinyTIFF.read(instances)
        XCTAssertEqual(pages.count, 2)
        XCTAssertTrue(pages.allSatisfy { $0.bitsPerSample == 32 && $0.sampleFormat == 1 && $0.integers.count == 64 * 64 })
        let ids = pages.map { Set($0.integers).subtracting([0]) }
        XCTAssertFalse(ids[0].isEmpty, "no cells on page 0")
        XCTAssertTrue(ids[0].isDisjoint(with: ids[1]), "ids are unique over the stack")
        XCTAssertEqual(ids[0].union(ids[1]), Set(1...UInt32(ids[0].count + ids[1].count)), "ids run from 1 without gaps")
        let png = try Data(contentsOf: preview)
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])

        // An explicit threshold wins; a bad one is refused.
        let explicit = try unet(["predict", "--model", model, "--input", volume, "--output", out.appendingPathComponent("p.tif").path,
                                 "--instances", out.appendingPathComponent("i2.tif").path, "--threshold", "0.3"])
        XCTAssertEqual(explicit.status, 0, explicit.stderr)
        XCTAssertTrue(explicit.stdout.contains("threshold 0.3)"), explicit.stdout)
        for (flags, mention) in [(["--instances", "x.tif", "--threshold", "1.5"], "--threshold 1.5"),
                                 (["--threshold", "0.5"], "--instances"),
                                 (["--instances-preview", "x.png"], "--instances")] {
            try expectOneLineError(try unet(["predict", "--model", model, "--input", volume, "--output", "p.tif"] + flags),
                                   status: 64, mentioning: mention)
        }
    }

    func testSummaryOfFoldEvaluations() throws {
        let f = try Fixture.shared()
        let folder = f.root.appendingPathComponent("summary")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var files: [String] = []
        for fold in 0..<2 {
            // --save-json writes the object --json prints.
            let saved = folder.appendingPathComponent("saved/fold\(fold).json").path
            let r = try unet(["evaluate", "--model", f.best, "--data", f.data.path, "--folds", "3", "--fold", String(fold), "--json",
                              "--save-json", saved])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try String(contentsOfFile: saved, encoding: .utf8), r.stdout)
            let path = folder.appendingPathComponent("fold\(fold).json").path
            try Data(r.stdout.utf8).write(to: URL(fileURLWithPath: path))
            files.append(path)
        }
        try expectOneLineError(try unet(["evaluate", "--model", f.best, "--data", f.data.path, "--save-json", "/dev/null/x.json"]),
                               status: 73, mentioning: "--save-json")
        try expectOneLineError(try unet(["evaluate", "--summary"] + files + ["--save-json", "x.json"]), status: 64, mentioning: "--save-json")
        let table = try unet(["evaluate", "--summary"] + files)
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("2 evaluations"), table.stdout)
        XCTAssertTrue(table.stdout.contains("mean_jaccard"), table.stdout)
        XCTAssertTrue(table.stdout.contains(" +- "), table.stdout)
        let json = try unet(["evaluate", "--summary"] + files + ["--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let scores = object?["scores"] as? [[String: Any]]
        let mean = scores?.first { $0["name"] as? String == "mean_jaccard" }
        XCTAssertEqual(mean?["n"] as? Int, 2)
        XCTAssertNotNil(mean?["sd"] as? Double)

        let bogus = folder.appendingPathComponent("bogus.json").path
        try Data("{\"cost\": 1}".utf8).write(to: URL(fileURLWithPath: bogus))
        try expectOneLineError(try unet(["evaluate", "--summary", files[0], bogus]), status: 65, mentioning: "bogus.json")
        try expectOneLineError(try unet(["evaluate", "--summary", files[0], folder.appendingPathComponent("none.json").path]),
                               status: 66, mentioning: "none.json")
        try expectOneLineError(try unet(["evaluate", "--summary", files[0]]), status: 64, mentioning: "at least 2")
        try expectOneLineError(try unet(["evaluate", "--summary", files[0], files[1], "--model", f.best]), status: 64, mentioning: "--model")
        try expectOneLineError(try unet(["evaluate", "--data", f.data.path]), status: 64, mentioning: "--model")
        try expectOneLineError(try unet(["evaluate", "--model", f.best, "--data", f.data.path, "--folds", "3", "--fold", "3"]),
                               status: 64, mentioning: "--fold 3")
        try expectOneLineError(try unet(["evaluate", "--model", f.best, "--data", f.data.path, "--folds", "7", "--fold", "0"]),
                               status: 64, mentioning: "at most 6")
    }
}

/// `unet evaluate` and `unet predict` with several --model flags: an ensemble.
final class EnsembleCLITests: XCTestCase {
    func testEnsemblePredictsTheMeanOfItsModels() throws {
        let f = try Fixture.shared()
        let volume = f.data.appendingPathComponent("test-volume.tif").path
        let out = f.root.appendingPathComponent("ensemble")
        var pages: [[TinyTIFF.Page]] = []
        for models in [[f.best], [f.last], [f.best, f.last]] {
            let output = out.appendingPathComponent("p\(pages.count).tif")
            let r = try unet(["predict", "--input", volume, "--output", output.path] + models.flatMap { ["--model", $0] })
            XCTAssertEqual(r.status, 0, r.stderr)
            if models.count == 2 { XCTAssertTrue(r.stdout.contains("an ensemble of 2 models"), r.stdout) }
            pages.append(try TinyTIFF.read(output))
        }
        for page in 0..<2 {
            let mean = zip(pages[0][page].values, pages[1][page].values).map { ($0 + $1) / 2 }
            let ensemble = pages[2][page].values
            XCTAssertEqual(ensemble.count, 64 * 64)
            XCTAssertLessThan(zip(mean, ensemble).map { abs($0 - $1) }.max()!, 1e-6)
        }

        let scored = try unet(["evaluate", "--model", f.best, "--model", f.last, "--data", f.data.path, "--json"])
        XCTAssertEqual(scored.status, 0, scored.stderr)
        XCTAssertTrue(scored.stdout.contains("\"mean_jaccard\""), scored.stdout)
    }

    func testEnsembleFlagErrors() throws {
        let f = try Fixture.shared()
        let volume = f.data.appendingPathComponent("test-volume.tif").path
        let out = f.root.appendingPathComponent("ensemble-errors")
        try expectOneLineError(try unet(["evaluate", "--model", f.best, "--model", f.last, "--data", f.data.path, "--store-threshold"]),
                               status: 64, mentioning: "--store-threshold writes into one checkpoint")
        let instances = try unet(["predict", "--model", f.best, "--model", f.last, "--input", volume,
                                  "--output", out.appendingPathComponent("p.tif").path, "--instances", out.appendingPathComponent("i.tif").path])
        try expectOneLineError(instances, status: 64, mentioning: "needs --threshold")
        try expectOneLineError(try unet(["predict", "--input", volume, "--output", "p.tif"]), status: 64, mentioning: "missing --model")
        let absent = out.appendingPathComponent("absent.safetensors").path
        try expectOneLineError(try unet(["evaluate", "--model", f.best, "--model", absent, "--data", f.data.path]),
                               status: 66, mentioning: absent)

        // A model with 2.5D context sees other input than the fixture's.
        let context = out.appendingPathComponent("context")
        let train = try unet(["train", "--data", f.data.path, "--out", context.path, "--epochs", "1", "--tile", "32",
                              "--base-filters", "2", "--depth", "1", "--batch-size", "2", "--context-slices", "1", "--preview-every", "0"])
        XCTAssertEqual(train.status, 0, train.stderr)
        let contextModel = context.appendingPathComponent("best.safetensors").path
        let mismatch = try unet(["predict", "--model", f.best, "--model", contextModel, "--input", volume,
                                 "--output", out.appendingPathComponent("p.tif").path])
        try expectOneLineError(mismatch, status: 65, mentioning: "--model \(contextModel) takes 3 input channel(s)")
        XCTAssertTrue(mismatch.stderr.contains(f.best), mismatch.stderr)
    }
}
