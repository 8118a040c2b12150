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
            cell (1 = cell, 0 = membrane).

            Example:
              unet predict --model runs/x/best.safetensors --input data/isbi2012/test-volume.tif \\
                           --output test-probabilities.tif --preview previews/

            \(ExitStatus.helpTable)
            """)

    @Option(help: ArgumentHelp("A checkpoint written by `unet train` (best.safetensors or last.safetensors).", valueName: "ckpt"))
    var model: String

    @Option(help: ArgumentHelp("Multi-page grayscale TIFF to segment (8/16-bit or float).", valueName: "stack.tif"))
    var input: String

    @Option(help: ArgumentHelp("Where to write the probabilities (32-bit float TIFF, one page per input page).", valueName: "probs.tif"))
    var output: String

    @Option(help: ArgumentHelp("Input tile side of the overlap-tile inference; larger is faster but needs more memory (default: 512).", valueName: "px"))
    var tile: Int = 512

    @Flag(help: "Test-time augmentation: average over the 8 flips and rotations (8x slower).")
    var tta = false

    @Option(help: ArgumentHelp("Also write a PNG per page into this folder: image | cell probability | membrane overlay.", valueName: "dir"))
    var preview: String?

    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if tile < 16 || tile > 8192 { throw CLIError.usage("--tile \(tile): expected 16...8192") }
    }

    func run() throws {
        threadOptions.apply()
        let checkpoint = try loadCheckpoint(model, flag: "--model")
        try requireFile(input, flag: "--input")
        let outputURL = fileURL(output)
        try createFolder(outputURL.deletingLastPathComponent(), flag: "--output")
        let previewFolder = preview.map(fileURL)
        if let previewFolder { try createFolder(previewFolder, flag: "--preview") }

        let network = try checkpoint.makeModel()
        let stack = try ImageStack.read(from: fileURL(input))
        let images = stack.normalized()
        print("Predicting \(stack.pages) page(s) of \(stack.width)x\(stack.height) from \(input) with \(checkpoint.model.summary)\(tta ? ", test-time augmentation" : "")")
        let start = Date()
        let segmenter = Segmenter(model: network, tileSize: tile, testTimeAugmentation: tta)
        let interactive = stdoutIsTerminal
        let probabilities = segmenter.predict(stack: images) { done, total in
            if interactive {
                print("\r\u{1B}[2Kpage \(done)/\(total)", terminator: "")
                fflush(stdout)
            }
        }
        if interactive { print("\r\u{1B}[2K", terminator: "") }
        try probabilities.write(to: outputURL, format: .float32)
        if let previewFolder {
            for page in 0..<images.pages {
                let image = ImagePlane(width: images.width, height: images.height, pixels: images.page(page))
                let cell = Tensor(shape: [1, images.height, images.width], scalars: probabilities.page(page))
                try PredictionPreview.write(image: image, probabilities: cell, labels: nil,
                                            to: previewFolder.appendingPathComponent(String(format: "page-%03d.png", page)))
            }
        }
        print(String(format: "Wrote %@ (%d page(s), 32-bit float, 1 = cell) in %.1f s", outputURL.path, probabilities.pages,
                     Date().timeIntervalSince(start))
              + (previewFolder.map { "; previews in \($0.path)" } ?? ""))
    }
}
