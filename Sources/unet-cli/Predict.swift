import ArgumentParser
import Foundation
import Tensor
import UNet

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Segment a TIFF stack: cell probabilities as 32-bit float TIFF (the ISBI submission format).",
        discussion: """
            Every page of the input is segmented with overlap-tile inference (mirrored borders), so any page \
            size works. The output has the input's page count and size; each value is the probability of \
            cell (1 = cell, 0 = membrane). A model trained with --context-slices N reads each page's N \
            neighbours on each side (mirrored at the stack's ends) as it was trained to.

            --instances writes one id per cell (membrane 0) as a 32-bit unsigned TIFF: the seeded watershed \
            of the cell probability that the V_rand score uses, at --threshold or at the threshold `unet \
            evaluate --store-threshold` stored in the checkpoint. Ids are unique over the whole stack.

            Several --model flags predict with an ensemble: the mean of the models' probabilities (for \
            example the K models of a cross-validation). The models must take the same input (the same \
            --context-slices); --instances then needs --threshold.

            Examples:
              unet predict --model runs/x/best.safetensors --input data/isbi2012/test-volume.tif \\
                           --output test-probabilities.tif --preview previews/
              unet predict --model runs/x/best.safetensors --input data/isbi2012/test-volume.tif \\
                           --output test-probabilities.tif --instances test-instances.tif \\
                           --instances-preview test-instances.png
              unet predict --model runs/cv-f0/best.safetensors --model runs/cv-f1/best.safetensors \\
                           --input data/isbi2012/test-volume.tif --output ensemble-probabilities.tif

            \(ExitStatus.helpTable)
            """)

    @Option(help: ArgumentHelp("A checkpoint written by `unet train` (best.safetensors or last.safetensors), a run folder (its best.safetensors), or the folder of an ensemble (`unet train --members`: every member's best.safetensors). Repeat it for an ensemble that averages the models' probabilities.", valueName: "ckpt"))
    var model: [String] = []

    @Option(help: ArgumentHelp("Multi-page grayscale TIFF to segment (8/16-bit or float).", valueName: "stack.tif"))
    var input: String

    @Option(help: ArgumentHelp("Where to write the probabilities (32-bit float TIFF, one page per input page).", valueName: "probs.tif"))
    var output: String

    @Option(help: ArgumentHelp("Input tile side of the overlap-tile inference (default: the whole page plus its context margin when the network's activations for it fit in 3 GiB, else 512, or for depth 5 and deeper the smallest tile keeping a core as wide as the margin). Every tile size gives the same probabilities; larger is faster but needs more memory.", valueName: "px"))
    var tile: Int?

    @Flag(help: "Test-time augmentation: average over the 8 flips and rotations (8x slower); for a model trained with --no-flips, each transformed prediction is first shifted onto the plain one.")
    var tta = false

    @Option(help: ArgumentHelp("Also write a PNG per page into this folder: image | cell probability | membrane overlay.", valueName: "dir"))
    var preview: String?

    @Option(help: ArgumentHelp("Also write cell instances: one id per cell, membrane 0, as a 32-bit unsigned TIFF with the input's pages.", valueName: "labels.tif"))
    var instances: String?

    @Option(help: ArgumentHelp("Cell-probability threshold of the instance watershed, in [0, 1] (default: the one `unet evaluate --store-threshold` stored in the checkpoint).", valueName: "t"))
    var threshold: Float?

    @Option(name: .customLong("instances-preview"), help: ArgumentHelp("Also write the first page's instances as a PNG, a random colour per cell (needs --instances).", valueName: "png"))
    var instancesPreview: String?

    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if model.isEmpty { throw CLIError.usage("missing --model CKPT, a checkpoint written by `\(programName) train`") }
        if let tile, tile < 16 || tile > 8192 { throw CLIError.usage("--tile \(tile): expected 16...8192") }
        if let threshold, !(threshold >= 0 && threshold <= 1) {
            throw CLIError.usage("--threshold \(threshold): expected a cell probability in [0, 1]")
        }
        if threshold != nil && instances == nil { throw CLIError.usage("--threshold is the instance threshold: it needs --instances OUT.tif") }
        if instancesPreview != nil && instances == nil { throw CLIError.usage("--instances-preview needs --instances OUT.tif") }
    }

    func run() throws {
        threadOptions.apply()
        let collective = try jobCollective()
        let models = try ModelFlags(paths: model)
        let alignsTTA = models.alignsTestTimeAugmentation(tta, printNote: collective.isLeader)
        try requireFile(input, flag: "--input")
        let outputURL = fileURL(output)
        let previewFolder = preview.map(fileURL)
        var instanceThreshold: Float? = nil
        if instances != nil {
            if models.isEnsemble && threshold == nil {
                throw CLIError.usage("--instances with an ensemble of \(models.paths.count) models needs --threshold T (0...1): the thresholds stored in the checkpoints were chosen for each model alone; `\(programName) evaluate` with the same --model flags prints the ensemble's V_rand threshold")
            }
            guard let chosen = threshold ?? models.first.storedThreshold else {
                throw CLIError.usage("--instances needs a threshold: \(models.paths[0]) has none stored; pass --threshold T (0...1), or store the one that maximizes V_rand on validation slices with `\(programName) evaluate --model \(models.paths[0]) --data DIR --store-threshold`")
            }
            instanceThreshold = chosen
        }
        let instancesURL = instances.map(fileURL), instancesPreviewURL = instancesPreview.map(fileURL)
        if collective.isLeader {
            try createFolder(outputURL.deletingLastPathComponent(), flag: "--output")
            if let previewFolder { try createFolder(previewFolder, flag: "--preview") }
            if let instancesURL { try createFolder(instancesURL.deletingLastPathComponent(), flag: "--instances") }
            if let instancesPreviewURL { try createFolder(instancesPreviewURL.deletingLastPathComponent(), flag: "--instances-preview") }
        }
        collective.barrier()

        let networks = try models.makeModels()
        let reader = try TIFFPageReader(path: fileURL(input).path)
        let tileSize = tile ?? models.checkpoints.map {
            Segmenter.automaticTileSize(width: reader.width, height: reader.height, configuration: $0.model)
        }.min()!
        let processes = collective.size > 1 ? ", \(collective.size) processes" : ""
        print("Predicting \(reader.pages) page(s) of \(reader.width)x\(reader.height) from \(input) with \(models.summary), tile \(tileSize)\(tta ? ", test-time augmentation" : "")\(processes)")
        let start = Date()
        let segmenter = Segmenter(models: networks, tileSize: tileSize, testTimeAugmentation: tta, alignsTestTimeAugmentation: alignsTTA)
        let interactive = stdoutIsTerminal
        // Rank 0 labels the instances of every page as it writes its probabilities.
        var instanceWriter: InstanceStackWriter? = nil
        if collective.isLeader, let instancesURL, let instanceThreshold {
            instanceWriter = try InstanceStackWriter(path: instancesURL.path, width: reader.width, height: reader.height,
                                                     pages: reader.pages, threshold: instanceThreshold)
        }
        let result = try segmenter.predictPages(input: fileURL(input).path, output: outputURL.path, collective: collective,
                                                onPage: { page, image, probability in
            guard let previewFolder else { return }
            let cell = Tensor(shape: [1, image.height, image.width], scalars: probability)
            try PredictionPreview.write(image: image, probabilities: cell, labels: nil,
                                        to: previewFolder.appendingPathComponent(String(format: "page-%03d.png", page)))
        }, onWritten: { page, probability in
            guard let writer = instanceWriter else { return }
            let cells = try writer.append(cellProbability: ImagePlane(width: reader.width, height: reader.height, pixels: probability))
            if page == 0, let instancesPreviewURL { try CellInstances.writePreview(cells, to: instancesPreviewURL) }
        }, progress: { done, total in
            if interactive {
                print("\r\u{1B}[2Kpage \(done)/\(total)", terminator: "")
                fflush(stdout)
            }
        })
        if interactive { print("\r\u{1B}[2K", terminator: "") }
        try instanceWriter?.finish()
        print(String(format: "Wrote %@ (%d page(s), 32-bit float, 1 = cell) in %.1f s", outputURL.path, result.pages,
                     Date().timeIntervalSince(start))
              + (previewFolder.map { "; previews in \($0.path)" } ?? ""))
        if let instanceWriter, let instancesURL {
            print("Wrote \(instancesURL.path) (\(instanceWriter.cellCount) cell(s), 32-bit ids, membrane 0, threshold \(instanceWriter.threshold)\(threshold == nil ? " stored in the checkpoint" : ""))"
                  + (instancesPreviewURL.map { "; first page's preview \($0.path)" } ?? ""))
        }
    }
}
