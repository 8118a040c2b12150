import ArgumentParser
import Benchmarking
import Foundation
import NN
import UNet

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a checkpoint on labelled slices: accuracy, Jaccard, Dice, V_rand, V_info.",
        discussion: """
            Scores the validation slices of an ISBI-layout dataset (the same default split as `unet train`), \
            the block of --fold of --folds, or every labelled slice with --all. Jaccard and Dice are per class \
            (0 = membrane, 1 = cell) and their mean; V_rand and V_info are the ISBI 2012 challenge's scores \
            (max over the thresholds 0, 0.1, ..., 1 of the cell probability). A model trained with \
            --context-slices N sees each scored slice's neighbours in the stack (images only).
            --json prints one object with the keys accuracy, jaccard, mean_jaccard, dice, mean_dice, \
            v_rand, v_info, v_rand_threshold, cost.
            --store-threshold writes the threshold where V_rand is highest on the scored slices into the \
            checkpoint (atomically); `unet predict --instances` then uses it.
            --save-json FILE also writes that object to FILE.
            Several --model flags score an ensemble: the mean of the models' probabilities, as `unet predict` \
            with the same flags computes it.
            --summary FILE... reads evaluations saved with --json (one per fold of a cross-validation) and \
            prints the mean and sample standard deviation of every score (with --json, one object).

            Examples:
              unet evaluate --model runs/x/best.safetensors --data data/isbi2012 --val-slices 25-29 --json
              unet evaluate --model runs/cv/fold2/best.safetensors --data data/isbi2012 --folds 5 --fold 2 --store-threshold
              unet evaluate --summary runs/cv/fold*/evaluation.json
              unet evaluate --model runs/s0/best.safetensors --model runs/s1/best.safetensors --data data/isbi2012

            \(ExitStatus.helpTable)
            """)

    @Option(help: ArgumentHelp("A checkpoint written by `unet train`, a run folder (its best.safetensors), or the folder of an ensemble (`unet train --members`: every member's best.safetensors). Repeat it to score the ensemble that averages the models' probabilities.", valueName: "ckpt"))
    var model: [String] = []

    @Option(help: ArgumentHelp("Dataset folder in the ISBI layout (train-volume.tif, train-labels.tif).", valueName: "dir"))
    var data: String?

    @Option(name: .customLong("val-slices"), help: ArgumentHelp("Slices to score, 0-based inclusive: A-B or A (default: the last sixth, as `unet train`).", valueName: "A-B"))
    var valSlices: SliceRange?

    @Option(help: ArgumentHelp("Score the validation block of a cross-validation fold: k contiguous blocks, as `unet train --folds` (with --fold).", valueName: "k"))
    var folds: Int?

    @Option(help: ArgumentHelp("The fold whose block to score, 0-based (with --folds).", valueName: "i"))
    var fold: Int?

    @Flag(help: "Score every labelled slice instead of the validation slices.")
    var all = false

    @Option(help: ArgumentHelp("Input tile side of the overlap-tile inference (default: as `unet predict`, the whole slice plus the network's context margin when that fits 3 GiB of activations).", valueName: "px"))
    var tile: Int?

    @Flag(help: "Test-time augmentation: average over the 8 flips and rotations; for a model trained with --no-flips, each transformed prediction is first shifted onto the plain one.")
    var tta = false

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(name: .customLong("save-json"), help: ArgumentHelp("Also write the scores as the --json object to this file (atomically), e.g. for --summary.", valueName: "file"))
    var saveJSON: String?

    @Flag(name: .customLong("store-threshold"), help: "Write the cell-probability threshold that maximizes V_rand on the scored slices into the checkpoint's metadata, for `unet predict --instances`.")
    var storeThreshold = false

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Summarize evaluations written by `unet evaluate --json` (at least 2 files): mean and standard deviation of every score. Takes no --model or --data.", valueName: "file"))
    var summary: [String] = []

    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if !summary.isEmpty {
            let others: [(String, Bool)] = [("--model", !model.isEmpty), ("--data", data != nil), ("--val-slices", valSlices != nil),
                                            ("--folds", folds != nil), ("--fold", fold != nil), ("--all", all), ("--tta", tta),
                                            ("--store-threshold", storeThreshold), ("--save-json", saveJSON != nil)]
            if let flag = others.first(where: { $0.1 })?.0 { throw CLIError.usage("--summary reads saved evaluations: it takes no \(flag)") }
            if summary.count < 2 { throw CLIError.usage("--summary \(summary.joined(separator: " ")): expected at least 2 evaluation files (a mean and standard deviation need two)") }
            return
        }
        guard !model.isEmpty else { throw CLIError.usage("missing --model CKPT (or --summary FILE... to summarize saved evaluations)") }
        guard data != nil else { throw CLIError.usage("missing --data DIR, the ISBI-layout folder of the slices to score") }
        if let tile, tile < 16 || tile > 8192 { throw CLIError.usage("--tile \(tile): expected 16...8192") }
        if all && valSlices != nil { throw CLIError.usage("--all and --val-slices exclude each other") }
        try checkFoldFlags(folds: folds, fold: fold, conflicting: valSlices != nil ? "--val-slices" : all ? "--all" : nil)
    }

    func run() throws {
        if !summary.isEmpty { return try summarize() }
        guard !model.isEmpty, let data else { return }
        threadOptions.apply()
        let collective = try jobCollective()
        let models = try ModelFlags(paths: model)
        if storeThreshold && models.isEnsemble {
            throw CLIError.usage("--store-threshold writes into one checkpoint: give one --model (an ensemble's V_rand threshold is printed, and `unet predict --threshold` takes it)")
        }
        let alignsTTA = models.alignsTestTimeAugmentation(tta, printNote: collective.isLeader)
        var split = valSlices?.range
        if let folds, let fold {
            let volume = fileURL(data).appendingPathComponent(ISBIDataset.volumeFileName).path
            try requireFile(volume, flag: "--data")
            do {
                split = try ISBIDataset.foldValidationSlices(pageCount: try TIFFPageReader(path: volume).pages, folds: folds, fold: fold)
            } catch let error as ISBIDatasetError {
                throw CLIError.usage("--folds \(folds) --fold \(fold): \(error) (\(volume))")
            }
        }
        let dataset = try loadDataset(folder: fileURL(data), flag: "--data", validationSlices: split,
                                      contextSlices: models.first.model.contextSlices)
        let networks = try models.makeModels()
        let slices = all ? dataset.slices : dataset.validation
        let width = slices.map(\.width).max() ?? 0, height = slices.map(\.height).max() ?? 0
        let tileSize = tile ?? models.checkpoints.map {
            Segmenter.automaticTileSize(width: width, height: height, configuration: $0.model)
        }.min()!
        let segmenter = Segmenter(models: networks, tileSize: tileSize, testTimeAugmentation: tta, alignsTestTimeAugmentation: alignsTTA)
        let start = Date()
        let result = segmenter.evaluate(slices, isbiScores: true, collective: collective)
        let indices = slices.map(\.index)
        var stored: String? = nil
        if storeThreshold, collective.isLeader {
            guard let threshold = result.vRandThreshold, threshold.isFinite else {
                throw CLIError(.dataError, "--store-threshold: no V_rand threshold could be chosen on slices \(describeSlices(indices))")
            }
            try CheckpointSummary.storeThreshold(threshold, source: "V_rand on slices \(describeSlices(indices)) of \(fileURL(data).path)", in: models.paths[0])
            stored = "Stored threshold \(threshold) (V_rand \(String(format: "%.6f", result.vRand ?? .nan)) on slices \(describeSlices(indices))) in \(models.paths[0])"
        }
        if let saveJSON, collective.isLeader {
            let url = fileURL(saveJSON)
            try createFolder(url.deletingLastPathComponent(), flag: "--save-json")
            do {
                try AtomicFileWriter.write(Array((jsonString(result) + "\n").utf8), to: url.path)
            } catch let error as FileWriteError {
                throw CLIError(.cannotCreate, "--save-json \(error)")
            }
        }
        if json {
            print(jsonString(result))
            if let stored { printError(stored) }
            return
        }
        print("Model: \(models.paths.joined(separator: ", ")) (\(models.summary))")
        print("Slices: \(describeSlices(indices)) of \(data) (\(dataset.width)x\(dataset.height))")
        func row(_ name: String, _ value: Double?) {
            print(name.padding(toLength: 28, withPad: " ", startingAt: 0) + (value.map { String(format: "%.6f", $0) } ?? "-"))
        }
        row("cost (cross-entropy)", result.cost)
        row("pixel accuracy", result.accuracy)
        for (c, j) in result.jaccard.enumerated() { row("jaccard class \(c)\(c == 0 ? " (membrane)" : c == 1 ? " (cell)" : "")", j) }
        row("mean jaccard", result.meanJaccard)
        for (c, d) in result.dice.enumerated() { row("dice class \(c)", d) }
        row("mean dice", result.meanDice)
        row("V_rand", result.vRand)
        row("V_info", result.vInfo)
        row("V_rand threshold", result.vRandThreshold.map(Double.init))
        print(String(format: "(%.1f s)", Date().timeIntervalSince(start)))
        if let stored { print(stored) }
    }

    /// `--summary`: mean and standard deviation of every score over the saved evaluations.
    func summarize() throws {
        var results: [EvaluationResult] = []
        for path in summary {
            try requireFile(path, flag: "--summary")
            let bytes = try Data(contentsOf: fileURL(path))
            do {
                results.append(try JSONDecoder().decode(EvaluationResult.self, from: bytes))
            } catch {
                throw CLIError(.dataError, "--summary \(path): not an evaluation written by `unet evaluate --json` (\(describeDecodingError(error)))")
            }
        }
        let table: EvaluationSummary
        do {
            table = try EvaluationSummary(results: results)
        } catch let error as EvaluationSummaryError {
            throw CLIError(.dataError, "--summary: \(error)")
        }
        if json {
            struct Output: Encodable { var evaluations: Int; var files: [String]; var scores: [EvaluationSummary.Row] }
            print(jsonString(Output(evaluations: table.evaluations, files: summary, scores: table.rows)))
            return
        }
        print("\(table.evaluations) evaluations: \(summary.joined(separator: ", "))")
        print("score".padding(toLength: 20, withPad: " ", startingAt: 0) + "mean +- sd (n)")
        for row in table.rows {
            print(row.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                  + String(format: "%.4f +- %.4f (%d)", row.mean, row.standardDeviation, row.count))
        }
    }
}

/// A decoding error in a few words: the missing or mistyped key, or "not JSON".
func describeDecodingError(_ error: Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): return "no '\(key.stringValue)'"
    case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
        return "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
    case DecodingError.dataCorrupted: return "not JSON"
    default: return "unreadable"
    }
}

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic EM dataset in the ISBI layout.",
        discussion: """
            Writes train-volume.tif and train-labels.tif (labels 255 = cell, 0 = membrane, about 22 % membrane) \
            and, unless --test-slices 0, test-volume.tif, as uncompressed 8-bit multi-page TIFF. The same seed \
            and size always give the same data.

            \(ExitStatus.helpTable)
            """)

    @Option(help: ArgumentHelp("Folder to write (created if needed).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Labelled slices (default: 30, as ISBI 2012).", valueName: "n"))
    var slices: Int = 30

    @Option(name: .customLong("test-slices"), help: ArgumentHelp("Unlabelled slices in test-volume.tif (default: 0 = no test volume).", valueName: "n"))
    var testSlices: Int = 0

    @Option(help: ArgumentHelp("Side of every slice in pixels (default: 256; ISBI's are 512).", valueName: "px"))
    var size: Int = 256

    @Option(help: ArgumentHelp("Seed (default: 2012).", valueName: "k"))
    var seed: UInt64 = 2012

    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if slices < 2 || slices > 10_000 { throw CLIError.usage("--slices \(slices): expected 2...10000 (training and validation need one each)") }
        if testSlices < 0 || testSlices > 10_000 { throw CLIError.usage("--test-slices \(testSlices): expected 0...10000") }
        if size < 16 || size > 8192 { throw CLIError.usage("--size \(size): expected 16...8192") }
    }

    func run() throws {
        threadOptions.apply()
        let folder = fileURL(out)
        try createFolder(folder, flag: "--out")
        let start = Date()
        try SyntheticEM(width: size, height: size, seed: seed).write(to: folder, trainCount: slices, testCount: testSlices)
        print(String(format: "Wrote %d labelled%@ slice(s) of %dx%d (seed %llu) to %@ in %.1f s", slices,
                     testSlices > 0 ? " + \(testSlices) test" : "", size, size, seed, folder.path, Date().timeIntervalSince(start)))
    }
}
