import ArgumentParser
import Benchmarking
import Foundation
import UNet

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a checkpoint on labelled slices: accuracy, Jaccard, Dice, V_rand, V_info.",
        discussion: """
            Scores the validation slices of an ISBI-layout dataset (the same default split as `unet train`), \
            or every labelled slice with --all. Jaccard and Dice are per class (0 = membrane, 1 = cell) and \
            their mean; V_rand and V_info are the ISBI 2012 challenge's scores (max over thresholds). A model \
            trained with --context-slices N sees each scored slice's neighbours in the stack (images only).
            --json prints one object with the keys accuracy, jaccard, mean_jaccard, dice, mean_dice, \
            v_rand, v_info, cost.

            Example:
              unet evaluate --model runs/x/best.safetensors --data data/isbi2012 --val-slices 25-29 --json

            \(ExitStatus.helpTable)
            """)

    @Option(help: ArgumentHelp("A checkpoint written by `unet train`.", valueName: "ckpt"))
    var model: String

    @Option(help: ArgumentHelp("Dataset folder in the ISBI layout (train-volume.tif, train-labels.tif).", valueName: "dir"))
    var data: String

    @Option(name: .customLong("val-slices"), help: ArgumentHelp("Slices to score, 0-based inclusive: A-B or A (default: the last sixth, as `unet train`).", valueName: "A-B"))
    var valSlices: SliceRange?

    @Flag(help: "Score every labelled slice instead of the validation slices.")
    var all = false

    @Option(help: ArgumentHelp("Input tile side of the overlap-tile inference (default: 512).", valueName: "px"))
    var tile: Int = 512

    @Flag(help: "Test-time augmentation: average over the 8 flips and rotations.")
    var tta = false

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if tile < 16 || tile > 8192 { throw CLIError.usage("--tile \(tile): expected 16...8192") }
        if all && valSlices != nil { throw CLIError.usage("--all and --val-slices exclude each other") }
    }

    func run() throws {
        threadOptions.apply()
        let collective = try jobCollective()
        let checkpoint = try loadCheckpoint(model, flag: "--model")
        let dataset = try loadDataset(folder: fileURL(data), flag: "--data", validationSlices: valSlices?.range,
                                      contextSlices: checkpoint.model.contextSlices)
        let network = try checkpoint.makeModel()
        let slices = all ? dataset.slices : dataset.validation
        let segmenter = Segmenter(model: network, tileSize: tile, testTimeAugmentation: tta)
        let start = Date()
        let result = segmenter.evaluate(slices, isbiScores: true, collective: collective)
        if json {
            print(jsonString(result))
            return
        }
        let indices = slices.map(\.index)
        print("Model: \(model) (\(checkpoint.model.summary))")
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
        print(String(format: "(%.1f s)", Date().timeIntervalSince(start)))
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
