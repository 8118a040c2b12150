import ArgumentParser
import Foundation
import NN
import UNet

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's model as ONNX, for onnxruntime and other tools.",
        discussion: """
            The ONNX file (opset \(ONNXExport.opset)) is the network in evaluation mode, batch norm folded into the \
            convolutions: input '\(ONNXExport.inputName)' [batch, channels, height, width], output \
            '\(ONNXExport.logitsName)' [batch, classes, height', width'] (and with --softmax '\(ONNXExport.probabilitiesName)', \
            the softmax over the classes). Batch, height and width are dynamic; height and width must be sizes the \
            network takes (same padding: multiples of 2^depth, e.g. 16 for depth 4). Class 1 is cell, class 0 membrane.

            Example:
              unet export --onnx model.onnx runs/x/best.safetensors --softmax

            The BioImage Model Zoo package (--bioimageio) is not available yet.

            \(ExitStatus.helpTable)
            """)

    @Option(help: ArgumentHelp("Where to write the ONNX model (written atomically; its folder is created).", valueName: "model.onnx"))
    var onnx: String?

    @Flag(help: "Also output the class probabilities ('\(ONNXExport.probabilitiesName)', softmax over the classes).")
    var softmax = false

    @Argument(help: ArgumentHelp("A checkpoint written by `unet train` (best.safetensors or last.safetensors).", valueName: "ckpt"))
    var checkpoint: String

    func validate() throws {
        guard let onnx else { throw CLIError.usage("missing --onnx <model.onnx>: the format to export (the only one so far)") }
        if onnx.isEmpty { throw CLIError.usage("--onnx: expected a file name") }
    }

    func run() throws {
        let summary = try loadCheckpoint(checkpoint, flag: "checkpoint")
        let output = fileURL(onnx ?? "")
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: output.path, isDirectory: &isFolder), isFolder.boolValue {
            throw CLIError(.cannotCreate, "--onnx \(output.path): is a folder, expected a file name")
        }
        try createFolder(output.deletingLastPathComponent(), flag: "--onnx")
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
        let size = bytes.count < 1_048_576 ? String(format: "%.0f KiB", Double(bytes.count) / 1024)
            : String(format: "%.1f MiB", Double(bytes.count) / 1_048_576)
        print("Wrote \(output.path) (\(size), ONNX opset \(ONNXExport.opset)): \(c.summary)")
        print("Input '\(ONNXExport.inputName)' [batch, \(c.inputChannels), height, width] with height and width \(sizes); "
              + "output '\(ONNXExport.logitsName)' [batch, \(c.classes), \(c.padding == .same ? "height, width" : "out_height, out_width")]"
              + (softmax ? " and '\(ONNXExport.probabilitiesName)'" : ""))
    }
}
