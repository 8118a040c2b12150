import Foundation
import NN
import Tensor

/// Writes a `UNetModel` as an ONNX model (opset 17) for inference elsewhere: onnxruntime, OpenCV's
/// DNN module, ilastik, deepImageJ and other ONNX runtimes.
///
/// The graph is the model in evaluation mode:
/// - input `input` `[batch, inputChannels, height, width]`, float32, with dynamic `batch`, `height`
///   and `width`;
/// - output `logits` `[batch, classes, height, width]` (same padding; for valid padding
///   `[batch, classes, out_height, out_width]`, `configuration.outputSize(forInputSize:)` of each
///   side), and with `probabilities: true` also `probabilities`, the softmax of the logits over the
///   class axis 1;
/// - each 3x3 convolution (`Conv`, pads 1 for same padding, 0 for valid) and each up-convolution
///   (`ConvTranspose`, kernel 2, stride 2) has its batch norm folded into its weights and bias, with
///   the running statistics; then `Elu` (alpha 1) or `Relu`; `MaxPool` (kernel 2, stride 2) between
///   encoder levels; `Concat` of the up-convolution and the skip on axis 1, the skip first cropped to
///   the centre by a `Slice` for valid padding; the 1x1 head `Conv` with bias. Dropout is omitted.
///
/// The heights and widths the graph takes are those the model takes:
/// `configuration.outputSize(forInputSize:)` is non-nil for them (for same padding, multiples of
/// 2^depth). Runtimes do not check this; other sizes give wrong shapes or errors at Concat.
///
/// ```swift
/// let model = try CheckpointSummary.load(path: "runs/x/best.safetensors").makeModel()
/// try ONNXExport.write(model, to: URL(fileURLWithPath: "model.onnx"), probabilities: true)
/// ```
public enum ONNXExport {
    /// The default-domain operator set the graph uses.
    public static let opset = 17
    /// The ONNX IR version written (8: the version of ONNX 1.12, which introduced opset 17).
    public static let irVersion = 8
    /// The graph input's name.
    public static let inputName = "input"
    /// The logits output's name.
    public static let logitsName = "logits"
    /// The softmax output's name (with `probabilities: true`).
    public static let probabilitiesName = "probabilities"
    /// The largest file written: protobuf messages are limited to 2 GiB (larger models would need
    /// ONNX's external data files, which the export does not write).
    public static let maximumBytes = Int(Int32.max)

    /// The encoded ONNX model (the bytes of a `.onnx` file).
    ///
    /// - Parameters:
    ///   - probabilities: also output the softmax over the classes as `probabilities`.
    ///   - producerVersion: recorded as the file's `producer_version` (e.g. the tool's version).
    /// - Throws: `ONNXExportError` when a weight (after folding batch norm) is not finite, or when the
    ///   model is too large for one protobuf file.
    public static func data(for model: UNetModel, probabilities: Bool = false, producerVersion: String = "") throws -> [UInt8] {
        try data(for: model, probabilities: probabilities, logits: true, producerVersion: producerVersion)
    }

    /// The encoded model; with `logits: false` (and `probabilities: true`) `probabilities` is the only
    /// output, as the bioimage.io package wants it.
    package static func data(for model: UNetModel, probabilities: Bool, logits: Bool, producerVersion: String) throws -> [UInt8] {
        let weightBytes = model.parameterCount * 4
        guard weightBytes < maximumBytes - 1_000_000 else {
            throw ONNXExportError(problem: .tooLarge(bytes: weightBytes))
        }
        let graph = try self.graph(for: model, probabilities: probabilities, logits: logits)
        let configuration = model.configuration
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // the same model gives the same bytes
        let json = (try? encoder.encode(configuration)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let onnx = ONNX.Model(
            irVersion: Int64(irVersion), opset: Int64(opset), producerName: "swift-unet", producerVersion: producerVersion,
            docString: "\(configuration.summary); input heights and widths: \(sizeRule(configuration))",
            metadata: [(MetadataKey.model, json)], graph: graph)
        let bytes = onnx.encode().bytes
        guard bytes.count <= maximumBytes else { throw ONNXExportError(problem: .tooLarge(bytes: bytes.count)) }
        return bytes
    }

    /// Writes the ONNX model to `url` atomically (a complete new file or the old one).
    ///
    /// - Throws: `ONNXExportError` (see `data(for:probabilities:producerVersion:)`); `FileWriteError`
    ///   when the file cannot be written.
    public static func write(_ model: UNetModel, to url: URL, probabilities: Bool = false, producerVersion: String = "") throws {
        let bytes = try data(for: model, probabilities: probabilities, producerVersion: producerVersion)
        try AtomicFileWriter.write(bytes, to: url.path)
    }

    /// "multiples of 16" or "e.g. 188, 204, ... (valid padding)".
    static func sizeRule(_ c: UNetConfiguration) -> String {
        if c.padding == .same { return "multiples of \(1 << c.depth)" }
        var sizes: [Int] = []
        var s = 1
        while sizes.count < 3 {
            s = c.validInputSize(atLeast: s)
            sizes.append(s)
            s += 1
        }
        return "those configuration.outputSize(forInputSize:) accepts, e.g. \(sizes.map(String.init).joined(separator: ", ")), ..."
    }

    /// The crop of the skip joined at each decoder level (lowest resolution first) for valid padding:
    /// the skip is `2 * offset` larger than the up-convolution's output in each side, whatever the
    /// input size, and its centre is kept.
    static func skipCropOffsets(_ c: UNetConfiguration) -> [Int] {
        func offsets(forInput input: Int) -> [Int] {
            var s = input
            var skips: [Int] = []
            for _ in 0..<c.depth {
                s -= 4
                skips.append(s)
                s /= 2
            }
            s -= 4
            var result: [Int] = []
            for skip in skips.reversed() {
                s *= 2
                result.append((skip - s) / 2)
                s -= 4
            }
            return result
        }
        let first = c.validInputSize(atLeast: 1)
        let result = offsets(forInput: first)
        precondition(result == offsets(forInput: c.validInputSize(atLeast: first + 1)),
                     "ONNXExport: the skip crop of valid padding depends on the input size")
        return result
    }

    /// The graph of `model` (evaluation mode). See `ONNXExport`. With `logits: false` the head's
    /// output is internal and `probabilities` the only output (`probabilities` must be true).
    package static func graph(for model: UNetModel, probabilities: Bool, logits: Bool = true) throws -> ONNX.Graph {
        precondition(logits || probabilities, "ONNXExport.graph: the graph needs an output")
        let c = model.configuration
        var builder = GraphBuilder(activation: c.activation, pads: c.padding == .same ? 1 : 0)
        var x = inputName
        var skips: [String] = []
        for (level, block) in model.encoder.enumerated() {
            x = try builder.doubleConv(block, input: x, scope: "encoder.\(level)")
            skips.append(x)
            x = builder.node("MaxPool", scope: "encoder.\(level).pool", inputs: [x], attributes: [
                .init("kernel_shape", .ints([2, 2])), .init("strides", .ints([2, 2]))])
        }
        x = try builder.doubleConv(model.bottleneck, input: x, scope: "bottleneck")
        let crops = c.padding == .valid ? skipCropOffsets(c) : Array(repeating: 0, count: c.depth)
        for (level, (block, skip)) in zip(model.decoder, skips.reversed()).enumerated() {
            let scope = "decoder.\(level)"
            let (weight, bias) = try fold(block.up.weight.value, bias: block.up.bias?.value, norm: block.upNorm,
                                          outputAxis: 1, name: "\(scope).up")
            let w = builder.constant("\(scope).up.weight", block.up.weight.shape, weight)
            let b = builder.constant("\(scope).up.bias", [bias.count], bias)
            x = builder.node("ConvTranspose", scope: "\(scope).up", inputs: [x, w, b], attributes: [
                .init("kernel_shape", .ints([2, 2])), .init("strides", .ints([2, 2]))])
            x = builder.activate(x, scope: "\(scope).up")
            var joined = skip
            if crops[level] != 0 {
                let o = Int64(crops[level])
                let starts = builder.constant("\(scope).crop.starts", int64s: [o, o])
                let ends = builder.constant("\(scope).crop.ends", int64s: [-o, -o])
                let axes = builder.constant("\(scope).crop.axes", int64s: [2, 3])
                joined = builder.node("Slice", scope: "\(scope).crop", inputs: [skip, starts, ends, axes])
            }
            x = builder.node("Concat", scope: "\(scope).concat", inputs: [x, joined], attributes: [.init("axis", .int(1))])
            x = try builder.doubleConv(block.convs, input: x, scope: "\(scope).convs")
        }
        let (headWeight, headBias) = try fold(model.head.weight.value, bias: model.head.bias?.value, norm: nil,
                                              outputAxis: 0, name: "head")
        let hw = builder.constant("head.weight", model.head.weight.shape, headWeight)
        let hb = builder.constant("head.bias", [headBias.count], headBias)
        let headOutput = logits ? logitsName : "head/Conv"
        builder.graph.nodes.append(ONNX.Node("Conv", name: "head", inputs: [x, hw, hb], outputs: [headOutput], attributes: [
            .init("kernel_shape", .ints([1, 1])), .init("pads", .ints([0, 0, 0, 0])), .init("strides", .ints([1, 1]))]))
        if probabilities {
            builder.graph.nodes.append(ONNX.Node("Softmax", name: "softmax", inputs: [headOutput], outputs: [probabilitiesName],
                                                 attributes: [.init("axis", .int(1))]))
        }

        let batch = ONNX.Dimension.parameter("batch")
        builder.graph.inputs = [ONNX.ValueInfo(name: inputName, shape: [batch, .value(c.inputChannels),
                                                                         .parameter("height"), .parameter("width")])]
        let outputSides: [ONNX.Dimension] = c.padding == .same
            ? [.parameter("height"), .parameter("width")] : [.parameter("out_height"), .parameter("out_width")]
        let outputShape = [batch, .value(c.classes)] + outputSides
        builder.graph.outputs = logits ? [ONNX.ValueInfo(name: logitsName, shape: outputShape)] : []
        if probabilities { builder.graph.outputs.append(ONNX.ValueInfo(name: probabilitiesName, shape: outputShape)) }
        return builder.graph
    }

    /// A convolution's weights with the batch norm after it folded in (running statistics):
    /// `w' = w * s`, `b' = (b - mean) * s + beta` with `s = gamma / sqrt(var + eps)` per output
    /// channel, which is axis `outputAxis` of the weights (0 for `Conv`, 1 for `ConvTranspose`).
    static func fold(_ weight: Tensor, bias: Tensor?, norm: BatchNorm2d?, outputAxis: Int,
                     name: String) throws -> (weight: [Float], bias: [Float]) {
        let shape = weight.shape
        let outputs = shape[outputAxis]
        var w = weight.scalars
        let b0 = bias?.scalars ?? Array(repeating: 0, count: outputs)
        var b = b0
        if let norm {
            let gamma = norm.weight.value.scalars, beta = norm.bias.value.scalars
            let mean = norm.runningMean.value.scalars, variance = norm.runningVariance.value.scalars
            let scale = (0..<outputs).map { Double(gamma[$0]) / (Double(variance[$0]) + Double(norm.epsilon)).squareRoot() }
            let inner = shape[(outputAxis + 1)...].reduce(1, *)
            for i in w.indices { w[i] = Float(Double(w[i]) * scale[(i / inner) % outputs]) }
            b = (0..<outputs).map { Float((Double(b0[$0]) - Double(mean[$0])) * scale[$0] + Double(beta[$0])) }
        }
        let normName = norm == nil ? "" : " (with its batch norm folded in)"
        guard w.allSatisfy(\.isFinite) else { throw ONNXExportError(problem: .nonFiniteWeights(name: "\(name).weight\(normName)")) }
        guard b.allSatisfy(\.isFinite) else { throw ONNXExportError(problem: .nonFiniteWeights(name: "\(name).bias\(normName)")) }
        return (w, b)
    }
}

/// Appends nodes and initializers, naming each node's output after the node.
private struct GraphBuilder {
    var graph = ONNX.Graph(name: "unet")
    let activation: UNetConfiguration.Activation
    let pads: Int64

    init(activation: UNetConfiguration.Activation, pads: Int64) {
        self.activation = activation
        self.pads = pads
    }

    mutating func node(_ op: String, scope: String, inputs: [String], attributes: [ONNX.Attribute] = []) -> String {
        let name = "\(scope)/\(op)"
        graph.nodes.append(ONNX.Node(op, name: name, inputs: inputs, outputs: [name], attributes: attributes))
        return name
    }

    mutating func constant(_ name: String, _ dims: [Int], _ values: [Float]) -> String {
        graph.initializers.append(ONNX.TensorValue(name: name, dims: dims, floats: values))
        return name
    }

    mutating func constant(_ name: String, int64s: [Int64]) -> String {
        graph.initializers.append(ONNX.TensorValue(name: name, int64s: int64s))
        return name
    }

    mutating func activate(_ x: String, scope: String) -> String {
        switch activation {
        case .elu: return node("Elu", scope: scope, inputs: [x], attributes: [.init("alpha", .float(1))])
        case .relu: return node("Relu", scope: scope, inputs: [x])
        }
    }

    mutating func conv(_ conv: Conv2d, _ norm: BatchNorm2d?, input: String, scope: String) throws -> String {
        let (weight, bias) = try ONNXExport.fold(conv.weight.value, bias: conv.bias?.value, norm: norm, outputAxis: 0, name: scope)
        let w = constant("\(scope).weight", conv.weight.shape, weight)
        let b = constant("\(scope).bias", [bias.count], bias)
        let k = Int64(conv.kernelSize)
        let y = node("Conv", scope: scope, inputs: [input, w, b], attributes: [
            .init("kernel_shape", .ints([k, k])), .init("pads", .ints([pads, pads, pads, pads])), .init("strides", .ints([1, 1]))])
        return activate(y, scope: scope)
    }

    mutating func doubleConv(_ block: DoubleConvBlock, input: String, scope: String) throws -> String {
        let y = try conv(block.conv1, block.bn1, input: input, scope: "\(scope).conv1")
        return try conv(block.conv2, block.bn2, input: y, scope: "\(scope).conv2")
    }
}

/// A model that cannot be written as ONNX.
public struct ONNXExportError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What prevents the export.
    public enum Problem: Equatable, Sendable {
        /// A weight or bias is NaN or infinite (a diverged run); names the tensor.
        case nonFiniteWeights(name: String)
        /// The file would exceed protobuf's 2 GiB limit; the weights' size in bytes.
        case tooLarge(bytes: Int)
    }

    /// The problem.
    public let problem: Problem

    /// Creates an error.
    public init(problem: Problem) { self.problem = problem }

    /// One line naming the problem.
    public var description: String {
        switch problem {
        case let .nonFiniteWeights(name):
            return "cannot export to ONNX: \(name) has NaN or infinite values (did training diverge?)"
        case let .tooLarge(bytes):
            return "cannot export to ONNX: the weights take \(bytes / 1_048_576) MiB, over the 2 GiB limit of a single ONNX file"
        }
    }
}
