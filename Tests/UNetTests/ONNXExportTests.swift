import Foundation
import NN
import Tensor
@testable import UNet
import XCTest

/// The ONNX export: the protobuf encoding against bytes worked out by hand from the wire-format rules,
/// the graph's structure and batch-norm folding, refusals, and (when a python3 with `onnx` and
/// `onnxruntime` is on PATH) the file checked by `onnx.checker` and run by onnxruntime against the
/// model's own logits.
final class ONNXExportTests: XCTestCase {
    // MARK: protobuf

    func testProtobufWriterMatchesHandComputedBytes() {
        func bytes(_ body: (inout ProtobufWriter) -> Void) -> [UInt8] {
            var w = ProtobufWriter()
            body(&w)
            return w.bytes
        }
        // Field 1, varint 150: tag 1 << 3 | 0, then 150 = 0b1_0010110 -> 0x96 0x01.
        XCTAssertEqual(bytes { $0.write(1, int64: 150) }, [0x08, 0x96, 0x01])
        XCTAssertEqual(bytes { $0.write(1, int64: 0) }, [0x08, 0x00])
        // Negative int64: ten bytes of two's complement.
        XCTAssertEqual(bytes { $0.write(1, int64: -1) }, [0x08] + Array(repeating: 0xFF, count: 9) + [0x01])
        XCTAssertEqual(bytes { $0.write(1, int64: -2) }, [0x08, 0xFE] + Array(repeating: 0xFF, count: 8) + [0x01])
        // Field 16 needs a two-byte tag: 16 << 3 = 128 -> 0x80 0x01.
        XCTAssertEqual(bytes { $0.write(16, int64: 1) }, [0x80, 0x01, 0x01])
        // Field 2, length-delimited "testing".
        XCTAssertEqual(bytes { $0.write(2, string: "testing") }, [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6E, 0x67])
        XCTAssertEqual(bytes { $0.write(2, string: "") }, [0x12, 0x00])
        // Field 2, float 1.0 (0x3F800000) as fixed32, little-endian: tag 2 << 3 | 5 = 0x15.
        XCTAssertEqual(bytes { $0.write(2, float: 1) }, [0x15, 0x00, 0x00, 0x80, 0x3F])
        // Packed varints 3, 270, 86942 in field 4.
        XCTAssertEqual(bytes { $0.writePacked(4, int64: [3, 270, 86942]) }, [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05])
        XCTAssertEqual(bytes { $0.writePacked(4, int64: []) }, [])
        // Packed floats 1 and -2 (0xC0000000) in field 4.
        XCTAssertEqual(bytes { $0.writePacked(4, float: [1, -2]) },
                       [0x22, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0])
        // Nested message in field 3 holding field 1 = 150.
        XCTAssertEqual(bytes { $0.writeMessage(3) { $0.write(1, int64: 150) } }, [0x1A, 0x03, 0x08, 0x96, 0x01])
        // A length over 127 takes a two-byte varint: 200 = 0xC8 0x01.
        XCTAssertEqual(Array(bytes { $0.write(1, bytes: Array(repeating: 7, count: 200)) }.prefix(3)), [0x0A, 0xC8, 0x01])
    }

    func testONNXMessagesMatchHandComputedBytes() {
        // AttributeProto: name 1, ints 8 (unpacked), type 20 = INTS (7); tag 20 << 3 = 160 -> 0xA0 0x01.
        XCTAssertEqual(ONNX.Attribute("kernel_shape", .ints([2, 2])).encode().bytes,
                       [0x0A, 0x0C] + Array("kernel_shape".utf8) + [0x40, 0x02, 0x40, 0x02, 0xA0, 0x01, 0x07])
        // f 2 (fixed32), type FLOAT (1).
        XCTAssertEqual(ONNX.Attribute("alpha", .float(1)).encode().bytes,
                       [0x0A, 0x05] + Array("alpha".utf8) + [0x15, 0x00, 0x00, 0x80, 0x3F, 0xA0, 0x01, 0x01])
        // i 3, type INT (2).
        XCTAssertEqual(ONNX.Attribute("axis", .int(1)).encode().bytes,
                       [0x0A, 0x04] + Array("axis".utf8) + [0x18, 0x01, 0xA0, 0x01, 0x02])
        // TensorProto: dims 1 (packed), data_type 2 = FLOAT, name 8, raw_data 9 little-endian.
        XCTAssertEqual(ONNX.TensorValue(name: "b", dims: [2], floats: [1, -2]).encode().bytes,
                       [0x0A, 0x01, 0x02, 0x10, 0x01, 0x42, 0x01, 0x62,
                        0x4A, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0])
        // INT64 (7): eight little-endian bytes per value; -1 is all ones.
        XCTAssertEqual(ONNX.TensorValue(name: "e", int64s: [-1]).encode().bytes,
                       [0x0A, 0x01, 0x01, 0x10, 0x07, 0x42, 0x01, 0x65, 0x4A, 0x08] + Array(repeating: 0xFF, count: 8))
        // ValueInfoProto { name "x", type { tensor_type { elem_type FLOAT, shape { dim { dim_param "n" },
        // dim { dim_value 3 } } } } }, built from the inside out.
        let shape: [UInt8] = [0x0A, 0x03, 0x12, 0x01, 0x6E, 0x0A, 0x02, 0x08, 0x03]
        let tensorType: [UInt8] = [0x08, 0x01, 0x12, UInt8(shape.count)] + shape
        let type: [UInt8] = [0x0A, UInt8(tensorType.count)] + tensorType
        XCTAssertEqual(ONNX.ValueInfo(name: "x", shape: [.parameter("n"), .value(3)]).encode().bytes,
                       [0x0A, 0x01, 0x78, 0x12, UInt8(type.count)] + type)
        // NodeProto: input 1, output 2, name 3, op_type 4.
        XCTAssertEqual(ONNX.Node("Relu", name: "r", inputs: ["a"], outputs: ["b"]).encode().bytes,
                       [0x0A, 0x01, 0x61, 0x12, 0x01, 0x62, 0x1A, 0x01, 0x72, 0x22, 0x04] + Array("Relu".utf8))
        // ModelProto: ir_version 1 = 8, producer_name 2, graph 7, opset_import 8 { version 2 = 17 }.
        let model = ONNX.Model(irVersion: 8, opset: 17, producerName: "p", producerVersion: "", docString: "",
                               metadata: [], graph: ONNX.Graph(name: "g"))
        XCTAssertEqual(model.encode().bytes, [0x08, 0x08, 0x12, 0x01, 0x70, 0x3A, 0x03, 0x12, 0x01, 0x67, 0x42, 0x02, 0x10, 0x11])
    }

    // MARK: the graph

    func testSamePaddingGraphFoldsBatchNormAndOmitsDropout() throws {
        let model = makeModel(UNetConfiguration(baseFilters: 2, depth: 1, dropout: 0.5), seed: 1)
        let graph = try ONNXExport.graph(for: model, probabilities: true)
        XCTAssertEqual(graph.nodes.map(\.opType), [
            "Conv", "Elu", "Conv", "Elu", "MaxPool",          // encoder 0
            "Conv", "Elu", "Conv", "Elu",                     // bottleneck
            "ConvTranspose", "Elu", "Concat", "Conv", "Elu", "Conv", "Elu",  // decoder 0
            "Conv", "Softmax"])
        XCTAssertEqual(graph.inputs.map(\.name), ["input"])
        XCTAssertEqual(graph.inputs[0].shape, [.parameter("batch"), .value(1), .parameter("height"), .parameter("width")])
        XCTAssertEqual(graph.outputs.map(\.name), ["logits", "probabilities"])
        XCTAssertEqual(graph.outputs[0].shape, [.parameter("batch"), .value(2), .parameter("height"), .parameter("width")])
        XCTAssertEqual(graph.nodes.last?.attributes.first?.name, "axis")
        // Every convolution has a bias (batch norm's offset), none a BatchNormalization node.
        for node in graph.nodes where node.opType.hasPrefix("Conv") { XCTAssertEqual(node.inputs.count, 3, node.name) }
        // 2 encoder, 2 bottleneck, 1 up- and 2 decoder convolutions, the head.
        XCTAssertEqual(graph.initializers.filter { $0.name.hasSuffix(".bias") }.count, 8)
        // The concatenation takes the up-convolution, then the encoder's output.
        XCTAssertEqual(graph.nodes[11].inputs, [graph.nodes[10].outputs[0], graph.nodes[3].outputs[0]])
        let withoutSoftmax = try ONNXExport.graph(for: model, probabilities: false)
        XCTAssertEqual(withoutSoftmax.nodes.last?.opType, "Conv")
        XCTAssertEqual(withoutSoftmax.outputs.map(\.name), ["logits"])
    }

    func testValidPaddingCropsTheSkipsByConstantOffsets() throws {
        let c = UNetConfiguration(baseFilters: 2, depth: 2, padding: .valid, batchNorm: false, activation: .relu,
                                  upsampling: .halveChannels)
        // Lowest level: skip 2p, up-convolution 2(p - 4): offset 4; next: skip 2q, up 2(q - 4) - 8 ... = offset 16.
        XCTAssertEqual(ONNXExport.skipCropOffsets(c), [4, 16])
        let graph = try ONNXExport.graph(for: makeModel(c, seed: 2), probabilities: false)
        XCTAssertEqual(graph.nodes.filter { $0.opType == "Slice" }.count, 2)
        XCTAssertEqual(graph.nodes.filter { $0.opType == "Relu" }.count, 12)
        XCTAssertTrue(graph.nodes.allSatisfy { $0.opType != "Elu" })
        let ends = graph.initializers.first { $0.name == "decoder.1.crop.ends" }
        XCTAssertEqual(ends?.rawData, ONNX.TensorValue(name: "", int64s: [-16, -16]).rawData)
        XCTAssertEqual(graph.outputs[0].shape, [.parameter("batch"), .value(2), .parameter("out_height"), .parameter("out_width")])
    }

    func testFoldedConvolutionEqualsConvolutionThenBatchNorm() throws {
        let model = makeModel(UNetConfiguration(baseFilters: 3, depth: 1), seed: 3)
        model.eval()
        var rng = SeededGenerator(seed: 4)
        let x = Tensor.randomNormal([2, 1, 8, 8], generator: &rng)
        let block = model.encoder[0]
        let expected = block.bn1!(block.conv1(x))
        let (w, b) = try ONNXExport.fold(block.conv1.weight.value, bias: nil, norm: block.bn1, outputAxis: 0, name: "c")
        let folded = conv2d(x, weight: Tensor(shape: block.conv1.weight.shape, scalars: w), bias: Tensor(shape: [b.count], scalars: b),
                            padding: .same)
        XCTAssertLessThan(maxDifference(folded.scalars, expected.scalars), 1e-5)
        // The up-convolution's output channels are its weights' axis 1.
        let up = model.decoder[0]
        let y = Tensor.randomNormal([1, 6, 4, 4], generator: &rng)
        let expectedUp = up.upNorm!(up.up(y))
        let (uw, ub) = try ONNXExport.fold(up.up.weight.value, bias: nil, norm: up.upNorm, outputAxis: 1, name: "u")
        let foldedUp = convTranspose2d(y, weight: Tensor(shape: up.up.weight.shape, scalars: uw),
                                       bias: Tensor(shape: [ub.count], scalars: ub), stride: 2)
        XCTAssertLessThan(maxDifference(foldedUp.scalars, expectedUp.scalars), 1e-5)
    }

    func testNonFiniteWeightsAreRefusedNamingTheTensor() {
        let model = makeModel(UNetConfiguration(baseFilters: 2, depth: 1), seed: 5)
        model.bottleneck.bn2!.runningVariance.value = Tensor(shape: [4], scalars: [1, .nan, 1, 1])
        XCTAssertThrowsError(try ONNXExport.data(for: model)) { error in
            XCTAssertEqual(error as? ONNXExportError,
                           ONNXExportError(problem: .nonFiniteWeights(name: "bottleneck.conv2.weight (with its batch norm folded in)")))
            XCTAssertTrue("\(error)".contains("NaN or infinite"), "\(error)")
        }
    }

    func testWriteIsAtomicAndStartsWithTheIRVersion() throws {
        let folder = makeTemporaryFolder(self)
        let url = folder.appendingPathComponent("m.onnx")
        let model = makeModel(UNetConfiguration(baseFilters: 2, depth: 1), seed: 6)
        try ONNXExport.write(model, to: url)
        let bytes = try [UInt8](Data(contentsOf: url))
        XCTAssertEqual(Array(bytes.prefix(2)), [0x08, 0x08])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["m.onnx"])
        XCTAssertThrowsError(try ONNXExport.write(model, to: folder.appendingPathComponent("missing/m.onnx"))) { error in
            XCTAssertTrue(error is FileWriteError, "\(error)")
        }
    }

    // MARK: an independent reader

    func testONNXRuntimeComputesTheModelsLogits() throws {
        guard let python = pythonWithONNX() else {
            let reason = "no python3 on PATH can import onnx, onnxruntime and numpy (pip install onnx onnxruntime numpy)"
            print("ONNXExportTests: skipping the onnxruntime comparison: \(reason)")
            throw XCTSkip(reason)
        }
        let cases: [(UNetConfiguration, height: Int, width: Int)] = [
            (UNetConfiguration(baseFilters: 4, depth: 2, dropout: 0.4), 32, 48),
            (UNetConfiguration(baseFilters: 3, depth: 3, activation: .relu, upsampling: .halveChannels), 16, 24),
            (UNetConfiguration(baseFilters: 3, depth: 2, padding: .valid, batchNorm: false, activation: .relu,
                               upsampling: .halveChannels), 44, 60),
            (UNetConfiguration(inputChannels: 2, classes: 3, baseFilters: 2, depth: 1, padding: .valid), 22, 30),
        ]
        let folder = makeTemporaryFolder(self)
        for (index, (configuration, height, width)) in cases.enumerated() {
            let model = makeModel(configuration, seed: UInt64(10 + index))
            model.eval()
            var rng = SeededGenerator(seed: UInt64(20 + index))
            let input = Tensor.randomUniform([2, configuration.inputChannels, height, width], generator: &rng)
            let logits = model(input)
            let probabilities = logits.softmax(alongAxis: 1)
            let onnxFile = folder.appendingPathComponent("case\(index).onnx")
            try ONNXExport.write(model, to: onnxFile, probabilities: true)
            let inputFile = folder.appendingPathComponent("case\(index).input")
            try Data(littleEndianBytes(input.scalars)).write(to: inputFile)
            let output = try runProgram(python, ["-c", onnxRuntimeScript, onnxFile.path, inputFile.path] + input.shape.map(String.init))
            let result = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any]
            XCTAssertEqual(result["logits_shape"] as? [Int], logits.shape, "case \(index)")
            XCTAssertEqual(result["probabilities_shape"] as? [Int], logits.shape, "case \(index)")
            let onnxLogits = try readFloats(URL(fileURLWithPath: inputFile.path + ".logits"))
            let onnxProbabilities = try readFloats(URL(fileURLWithPath: inputFile.path + ".probabilities"))
            let difference = maxDifference(onnxLogits, logits.scalars)
            print("ONNXExportTests: case \(index) (\(configuration.summary), input \(input.shape)): max |onnxruntime - unet| logits \(difference), probabilities \(maxDifference(onnxProbabilities, probabilities.scalars))")
            XCTAssertLessThan(difference, 1e-4, "case \(index): \(configuration.summary)")
            XCTAssertLessThan(maxDifference(onnxProbabilities, probabilities.scalars), 1e-4, "case \(index)")
            XCTAssertGreaterThan(Set(logits.scalars).count, 10, "constant logits would hide errors")
        }
    }

    /// Checks the model (`onnx.checker.check_model`, full check with shape inference), runs it with
    /// onnxruntime on the raw float32 input, writes each output next to the input file and prints
    /// their shapes as JSON.
    private let onnxRuntimeScript = """
        import json, sys
        import numpy as np
        import onnx, onnxruntime
        path, input_path = sys.argv[1], sys.argv[2]
        shape = [int(s) for s in sys.argv[3:]]
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == 17, model.opset_import
        session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
        x = np.fromfile(input_path, dtype='<f4').reshape(shape)
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, {'input': x})
        result = {}
        for name, value in zip(names, outputs):
            value.astype('<f4').tofile(input_path + '.' + name)
            result[name + '_shape'] = list(value.shape)
        print(json.dumps(result))
        """

    // MARK: helpers

    /// A model with random weights and random batch-norm parameters and running statistics (so the
    /// folding is exercised; fresh ones are the identity).
    private func makeModel(_ configuration: UNetConfiguration, seed: UInt64) -> UNetModel {
        var rng = SeededGenerator(seed: seed)
        let model = UNetModel(configuration: configuration, generator: &rng)
        var norms = model.encoder.flatMap { [$0.bn1, $0.bn2] } + [model.bottleneck.bn1, model.bottleneck.bn2]
        norms += model.decoder.flatMap { [$0.upNorm, $0.convs.bn1, $0.convs.bn2] }
        for case let norm? in norms {
            let c = norm.channels
            norm.weight.value = Tensor.randomUniform([c], lowerBound: 0.5, upperBound: 1.5, generator: &rng)
            norm.bias.value = Tensor.randomUniform([c], lowerBound: -0.5, upperBound: 0.5, generator: &rng)
            norm.runningMean.value = Tensor.randomUniform([c], lowerBound: -0.3, upperBound: 0.3, generator: &rng)
            norm.runningVariance.value = Tensor.randomUniform([c], lowerBound: 0.2, upperBound: 3, generator: &rng)
        }
        return model
    }
}

private func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

private func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v -> [UInt8] in
        let bits = v.bitPattern
        return [UInt8(truncatingIfNeeded: bits), UInt8(truncatingIfNeeded: bits >> 8),
                UInt8(truncatingIfNeeded: bits >> 16), UInt8(truncatingIfNeeded: bits >> 24)]
    }
}

private func readFloats(_ url: URL) throws -> [Float] {
    let bytes = try [UInt8](Data(contentsOf: url))
    return stride(from: 0, to: bytes.count - 3, by: 4).map { i in
        Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
    }
}

/// The path of a python3 on PATH that can import onnx, onnxruntime and numpy, or nil.
func pythonWithONNX() -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for folder in path.split(separator: ":") where !folder.isEmpty {
        let candidate = "\(folder)/python3"
        guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
        if (try? runProgram(candidate, ["-c", "import onnx, onnxruntime, numpy"])) != nil { return candidate }
    }
    return nil
}

/// Runs a program and returns its standard output; throws with its standard error on a non-zero exit.
private func runProgram(_ program: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    let out = Pipe()
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("python-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errorFile) }
    process.standardOutput = out
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let errors = (try? Data(contentsOf: errorFile)) ?? Data()
    guard process.terminationStatus == 0 else {
        throw NSError(domain: "python", code: Int(process.terminationStatus),
                      userInfo: [NSLocalizedDescriptionKey: "\(program) failed: \(String(decoding: errors, as: UTF8.self))"])
    }
    return String(decoding: data, as: UTF8.self)
}
