import Foundation
import XCTest

/// `unet train`'s recipe flags (issue 15): schedules, warmup, the moving average of the weights,
/// cross-validation folds and the augmentation's magnitudes, through the built executable.
final class RecipeCLITests: XCTestCase {
    func testFoldScheduleWarmupAndEMARunAndResume() throws {
        let f = try Fixture.shared()
        let run = f.root.appendingPathComponent("recipe-fold1")
        let r = try unet(["train", "--data", f.data.path, "--out", run.path, "--epochs", "2", "--tile", "32",
                          "--base-filters", "4", "--depth", "2", "--batch-size", "2", "--preview-every", "0",
                          "--folds", "3", "--fold", "1", "--schedule", "cosine", "--min-lr", "0.0002",
                          "--warmup-epochs", "1", "--ema", "0.9", "--no-flips", "--max-shear", "0", "--brightness", "0.1", "--contrast", "0.2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("augmentation no flips, rotation 25.0 deg, shear 0.0 rad, elastic sigma 10.0 px, brightness 0.1, contrast 0.2"), r.stdout)
        XCTAssertTrue(r.stdout.contains("validation slices 2-3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Recipe: cosine schedule to 0.0002 over 1 epochs, 1 warmup epoch(s), EMA of the weights, decay 0.9, fold 1 of 3"), r.stdout)
        // Epoch 1 ends its warmup at --lr; epoch 2 is the cosine's first (and only) epoch, also at --lr.
        XCTAssertTrue(r.stdout.contains(" s, lr 0.001\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("--data \(f.data.path) --folds 3 --fold 1\n"), "the evaluate hint scores the fold: \(r.stdout)")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        XCTAssertEqual(config?["validationSlices"] as? [Int], [2, 3])
        XCTAssertEqual(config?["trainSlices"] as? [Int], [0, 1, 4, 5])
        let training = config?["training"] as? [String: Any]
        XCTAssertEqual(training?["schedule"] as? String, "cosine")
        XCTAssertEqual(training?["warmupEpochs"] as? Int, 1)
        XCTAssertEqual(training?["emaDecay"] as? Double ?? 0, 0.9, accuracy: 1e-6)
        XCTAssertEqual(training?["folds"] as? Int, 3)
        XCTAssertEqual(training?["fold"] as? Int, 1)
        XCTAssertEqual(training?["maxShearRadians"] as? Double, 0)
        XCTAssertEqual(training?["flips"] as? Bool, false)
        XCTAssertEqual(training?["brightness"] as? Double ?? 0, 0.1, accuracy: 1e-9)
        XCTAssertEqual(training?["contrast"] as? Double ?? 0, 0.2, accuracy: 1e-9)

        // The checkpoint deploys the averaged weights: predict reads it as any other.
        let probabilities = f.root.appendingPathComponent("recipe-probabilities.tif")
        let predict = try unet(["predict", "--model", run.appendingPathComponent("best.safetensors").path,
                                "--input", f.data.appendingPathComponent("test-volume.tif").path, "--output", probabilities.path])
        XCTAssertEqual(predict.status, 0, predict.stderr)

        // --tta aligns the transformed predictions of a model trained without flips, and says so.
        let best = run.appendingPathComponent("best.safetensors").path
        let withTTA = try unet(["evaluate", "--model", best, "--data", f.data.path, "--tta", "--json"])
        XCTAssertEqual(withTTA.status, 0, withTTA.stderr)
        XCTAssertTrue(withTTA.stderr.contains("was trained without flips (--no-flips); --tta shifts each flipped or rotated prediction onto the plain one"), withTTA.stderr)
        let plain = try unet(["evaluate", "--model", best, "--data", f.data.path, "--json"])
        XCTAssertFalse(plain.stderr.contains("without flips"), plain.stderr)

        // Resuming keeps the fold (from config.json) and the recipe (from the checkpoint).
        let resumed = try unet(["train", "--resume", run.appendingPathComponent("last.safetensors").path, "--epochs", "3"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("validation slices 2-3"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("EPOCH 3: "), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("EMA of the weights, decay 0.9"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("brightness 0.1, contrast 0.2"), "resuming keeps the augmentation: \(resumed.stdout)")
        try expectOneLineError(try unet(["train", "--resume", run.appendingPathComponent("last.safetensors").path,
                                         "--epochs", "4", "--ema", "0.99"]), status: 64, mentioning: "--ema")
    }

    func testRecommendedRecipeSetsItsFlagsAndExplicitFlagsOverrideIt() throws {
        let f = try Fixture.shared()
        let run = f.root.appendingPathComponent("recipe-recommended")
        let r = try unet(["train", "--data", f.data.path, "--out", run.path, "--recipe", "recommended", "--epochs", "5",
                          "--tile", "32", "--base-filters", "4", "--depth", "2", "--preview-every", "0", "--contrast", "0.3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Training: 5 epochs, batch 2 x 32^2 crops, adam lr 0.001, loss cross-entropy+dice, augmentation no flips, rotation 25.0 deg, shear 0.41 rad, elastic sigma 5.0 px, brightness 0.1, contrast 0.3, none in the last 1 epoch(s)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("Recipe: cosine schedule to 0.0 over 4 epochs, 1 warmup epoch(s), EMA of the weights, decay 0.99"), r.stdout)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        let training = config?["training"] as? [String: Any]
        XCTAssertEqual(training?["loss"] as? String, "cross-entropy+dice")
        XCTAssertEqual(training?["flips"] as? Bool, false)
        XCTAssertEqual(training?["epochs"] as? Int, 5)
        XCTAssertEqual(training?["plainEpochs"] as? Int, 1, "the recipe's plain epochs are the last fifth of --epochs")
        // The recipe's 50 epochs bound the warmup when --epochs is not given.
        try expectOneLineError(try unet(["train", "--data", f.data.path, "--out", f.root.appendingPathComponent("recipe-r2").path,
                                         "--recipe", "recommended", "--warmup-epochs", "50"]), status: 64, mentioning: "fewer than the 50 epochs")
        try expectOneLineError(try unet(["train", "--resume", run.appendingPathComponent("last.safetensors").path, "--epochs", "6",
                                         "--recipe", "tutorial"]), status: 64, mentioning: "--recipe")
        try expectOneLineError(try unet(["train", "--resume", run.appendingPathComponent("last.safetensors").path, "--epochs", "6",
                                         "--plain-epochs", "2"]), status: 64, mentioning: "--plain-epochs")
    }

    func testRecipeFlagErrorsNameTheFlag() throws {
        let f = try Fixture.shared()
        let out = f.root.appendingPathComponent("recipe-bad").path
        let cases: [([String], String)] = [
            (["--fold", "1"], "--folds"),
            (["--folds", "1", "--fold", "0"], "--folds 1"),
            (["--folds", "3"], "--fold"),
            (["--folds", "3", "--fold", "3"], "--fold 3"),
            (["--folds", "3", "--fold", "-1"], "--fold"),
            (["--folds", "3", "--fold", "0", "--val-slices", "2-3"], "--val-slices"),
            (["--folds", "7", "--fold", "0"], "at most 6"),
            (["--schedule", "linear"], "--schedule"),
            (["--warmup-epochs", "3"], "fewer than the 3 epochs"),
            (["--warmup-epochs", "-1"], "--warmup-epochs"),
            (["--min-lr", "0.01"], "--min-lr"),
            (["--gamma", "1.5"], "--gamma"),
            (["--step-epochs", "0"], "--step-epochs"),
            (["--plateau-patience", "-1"], "--plateau-patience"),
            (["--ema", "1"], "--ema"),
            (["--ema", "nan"], "--ema"),
            (["--max-rotation", "200"], "--max-rotation"),
            (["--max-shear", "-1"], "--max-shear"),
            (["--elastic-sigma", "nan"], "--elastic-sigma"),
            (["--brightness", "2"], "--brightness"),
            (["--contrast", "1"], "--contrast"),
            (["--plain-epochs", "-1"], "--plain-epochs"),
            (["--plain-epochs", "4"], "--plain-epochs 4: expected 0...3"),
            (["--recipe", "fast"], "--recipe"),
        ]
        for (flags, mention) in cases {
            let r = try unet(["train", "--data", f.data.path, "--out", out, "--epochs", "3"] + flags)
            try expectOneLineError(r, status: 64, mentioning: mention)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(flags): a failed command left a run folder behind")
        }
    }
}

/// `--context-slices` through the executable: the model records it, and predict, evaluate and export
/// read it from the checkpoint.
final class ContextCLITests: XCTestCase {
    func testContextModelTrainsPredictsEvaluatesAndExports() throws {
        let f = try Fixture.shared()
        let run = f.root.appendingPathComponent("context-run")
        let r = try unet(["train", "--data", f.data.path, "--out", run.path, "--epochs", "1", "--tile", "32",
                          "--base-filters", "4", "--depth", "2", "--batch-size", "2", "--preview-every", "1",
                          "--context-slices", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("3 -> 2 classes, context 1 slice(s) above and below"), r.stdout)
        let best = run.appendingPathComponent("best.safetensors").path
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any]
        let model = config?["model"] as? [String: Any]
        XCTAssertEqual(model?["contextSlices"] as? Int, 1)
        XCTAssertEqual(model?["inputChannels"] as? Int, 3)

        let output = f.root.appendingPathComponent("context-probabilities.tif")
        let predict = try unet(["predict", "--model", best, "--input", f.data.appendingPathComponent("test-volume.tif").path,
                                "--output", output.path])
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let pages = try TinyTIFF.read(output)
        XCTAssertEqual(pages.count, 2)
        XCTAssertTrue(pages.allSatisfy { $0.values.allSatisfy { $0 >= 0 && $0 <= 1 } })

        let evaluate = try unet(["evaluate", "--model", best, "--data", f.data.path, "--json"])
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        let scores = try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as? [String: Any]
        let jaccard = try XCTUnwrap(scores?["mean_jaccard"] as? Double)
        XCTAssertTrue(jaccard > 0 && jaccard <= 1, "\(jaccard)")

        let onnx = f.root.appendingPathComponent("context.onnx")
        let export = try unet(["export", best, "--onnx", onnx.path])
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertTrue(export.stdout.contains("[batch, 3, height, width]"), export.stdout)

        try expectOneLineError(try unet(["train", "--context-slices", "9", "--out", f.root.appendingPathComponent("context-bad").path]),
                               status: 64, mentioning: "--context-slices")
        try expectOneLineError(try unet(["train", "--resume", run.appendingPathComponent("last.safetensors").path, "--epochs", "2",
                                         "--context-slices", "2"]), status: 64, mentioning: "--context-slices")
    }
}
