import ArgumentParser
import Foundation
import NN
import UNet

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's model as ONNX or as a BioImage Model Zoo (bioimage.io) package.",
        discussion: """
            --onnx: the ONNX file (opset \(ONNXExport.opset)) is the network in evaluation mode, batch norm folded into the \
            convolutions: input '\(ONNXExport.inputName)' [batch, channels, height, width], output \
            '\(ONNXExport.logitsName)' [batch, classes, height', width'] (and with --softmax '\(ONNXExport.probabilitiesName)', \
            the softmax over the classes). Batch, height and width are dynamic; height and width must be sizes the \
            network takes (same padding: multiples of 2^depth, e.g. 16 for depth 4). Class 1 is cell, class 0 membrane.

            --bioimageio: a ZIP package in bioimage.io model format \(BioImageIOPackage.formatVersion) for Fiji/deepImageJ, \
            ilastik, napari and `bioimageio test`: rdf.yaml, the ONNX weights, test input and output (.npy), a cover \
            image and a README with the training data and metrics from the checkpoint. The test image is a crop of the \
            first slice of the training data the checkpoint records, or a synthetic EM slice when that data cannot be \
            read. Its preprocessing scales raw intensities to [0, 1] as training did; with --softmax the output is \
            the class probabilities, else the logits.

            Examples:
              unet export --onnx model.onnx runs/x/best.safetensors --softmax
              unet export --bioimageio model.zip runs/x/best.safetensors --softmax \\
                          --author "Ada Lovelace"

            \(ExitStatus.helpTable)
            """)

    @Option(help: ArgumentHelp("Where to write the ONNX model (written atomically; its folder is created).", valueName: "model.onnx"))
    var onnx: String?

    @Option(help: ArgumentHelp("Where to write the bioimage.io package (a ZIP, written atomically; its folder is created).",
                               valueName: "package.zip"))
    var bioimageio: String?

    @Flag(help: "Also output the class probabilities ('\(ONNXExport.probabilitiesName)', softmax over the classes); with --bioimageio, output only them.")
    var softmax = false

    @Option(help: ArgumentHelp("--bioimageio: the model's name (5-128 letters, digits, spaces, _+-()). Default: from the architecture.",
                               valueName: "text"))
    var name: String?

    @Option(help: ArgumentHelp("--bioimageio: a one-paragraph description. Default: from the architecture.", valueName: "text"))
    var description: String?

    @Option(help: ArgumentHelp("--bioimageio: an author's name; repeat for several. Default: '\(BioImageIOMetadata.defaultAuthor)'.",
                               valueName: "name"))
    var author: [String] = []

    @Option(help: ArgumentHelp("--bioimageio: an SPDX license identifier.", valueName: "id"))
    var license: String = BioImageIOMetadata.defaultLicense

    @Option(help: ArgumentHelp("--bioimageio: a tag to add to the standard ones; repeat for several.", valueName: "tag"))
    var tag: [String] = []

    @Argument(help: ArgumentHelp("A checkpoint written by `unet train` (best.safetensors or last.safetensors).", valueName: "ckpt"))
    var checkpoint: String

    func validate() throws {
        switch (onnx, bioimageio) {
        case (nil, nil): throw CLIError.usage("missing --onnx <model.onnx> or --bioimageio <package.zip>: the format to export")
        case (.some, .some): throw CLIError.usage("--onnx and --bioimageio cannot be combined: export one at a time")
        default: break
        }
        if onnx?.isEmpty == true { throw CLIError.usage("--onnx: expected a file name") }
        if bioimageio?.isEmpty == true { throw CLIError.usage("--bioimageio: expected a file name") }
        if onnx != nil {
            let given = [("--name", name != nil), ("--description", description != nil), ("--author", !author.isEmpty),
                         ("--license", license != BioImageIOMetadata.defaultLicense), ("--tag", !tag.isEmpty)]
            if let flag = given.first(where: { $0.1 })?.0 { throw CLIError.usage("\(flag) describes a --bioimageio package, not an --onnx file") }
        }
    }

    func run() throws {
        let summary = try loadCheckpoint(checkpoint, flag: "checkpoint")
        if let path = bioimageio {
            try exportPackage(summary, to: path)
            return
        }
        let output = try outputFile(onnx ?? "", flag: "--onnx")
        let model = try summary.makeModel()
        model.eval()
        let bytes: [UInt8]
        do {
            bytes = try ONNXExport.data(for: model, probabilities: softmax, producerVersion: currentSystemReport().version)
        } catch let error as ONNXExportError {
            throw CLIError(.dataError, "\(checkpoint): \(error.description)")
        }
        do {
            try AtomicFileWriter.write(bytes, to: output.path)
        } catch let error as FileWriteError {
            throw CLIError(.cannotCreate, "--onnx \(error.description)")
        }
        let c = summary.model
        let sizes = c.padding == .same ? "multiples of \(1 << c.depth)" : "e.g. \(c.validInputSize(atLeast: 1)) or \(c.validInputSize(atLeast: 256))"
        print("Wrote \(output.path) (\(describeSize(bytes.count)), ONNX opset \(ONNXExport.opset)): \(c.summary)")
        print("Input '\(ONNXExport.inputName)' [batch, \(c.inputChannels), height, width] with height and width \(sizes); "
              + "output '\(ONNXExport.logitsName)' [batch, \(c.classes), \(c.padding == .same ? "height, width" : "out_height, out_width")]"
              + (softmax ? " and '\(ONNXExport.probabilitiesName)'" : ""))
    }

    /// `--bioimageio`: the package of the checkpoint, its test image from the recorded training data
    /// when readable.
    private func exportPackage(_ summary: CheckpointSummary, to path: String) throws {
        var metadata = BioImageIOMetadata.defaults(for: summary.model)
        if let name { metadata.name = name }
        if let description { metadata.description = description }
        if !author.isEmpty { metadata.authors = author }
        metadata.license = license
        metadata.tags = tag
        do {
            try metadata.validate()
        } catch let error as BioImageIOExportError {
            guard case let .invalidMetadata(field, _, _) = error else { throw error }
            throw CLIError.usage("--\(field): \(error.description)")
        }
        let output = try outputFile(path, flag: "--bioimageio")
        let model = try summary.makeModel()
        let (image, note) = BioImageIOTestImage.forCheckpoint(summary)
        if let note { print("Test image: synthetic EM (\(note))") }
        let package: BioImageIOPackage
        do {
            package = try BioImageIOPackage(model: model, metadata: metadata, testImage: image, probabilities: softmax,
                                            checkpoint: summary, producerVersion: currentSystemReport().version)
            try package.write(to: output)
        } catch let error as BioImageIOExportError {
            throw CLIError(.dataError, "\(checkpoint): \(error.description)")
        } catch let error as FileWriteError {
            throw CLIError(.cannotCreate, "--bioimageio \(error.description)")
        }
        let c = summary.model
        let g = BioImageIOPackage.geometry(c)
        let bytes = package.files.reduce(0) { $0 + $1.bytes.count }
        print("Wrote \(output.path) (\(describeSize(bytes)), bioimage.io model format \(BioImageIOPackage.formatVersion), ONNX opset \(ONNXExport.opset)): \(c.summary)")
        print("Input '\(BioImageIOPackage.inputID)' [batch, \(c.inputChannels), y, x], y and x \(g.min) + n * \(g.step), "
              + "scaled to [0, 1] from [\(image.rawRange.lowerBound), \(image.rawRange.upperBound)]; output '"
              + (softmax ? ONNXExport.probabilitiesName : ONNXExport.logitsName) + "' [batch, \(c.classes), y, x]"
              + (g.offset == 0 ? ", halo \(g.halo)" : ", \(-g.offset) pixels smaller"))
        print("Test image: \(image.origin)")
        print("Check it with: bioimageio test \(output.path)")
    }

    /// The output file's URL after checking it is not a folder and creating its folder.
    private func outputFile(_ path: String, flag: String) throws -> URL {
        let output = fileURL(path)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: output.path, isDirectory: &isFolder), isFolder.boolValue {
            throw CLIError(.cannotCreate, "\(flag) \(output.path): is a folder, expected a file name")
        }
        try createFolder(output.deletingLastPathComponent(), flag: flag)
        return output
    }

    private func describeSize(_ bytes: Int) -> String {
        bytes < 1_048_576 ? String(format: "%.0f KiB", Double(bytes) / 1024) : String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}
