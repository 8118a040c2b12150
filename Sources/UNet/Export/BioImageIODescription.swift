import Foundation

/// The `rdf.yaml` of a `BioImageIOPackage` (bioimage.io model format 0.5): metadata, the input and
/// output tensors with their axes, sizes, pre- and postprocessing and test tensors, the weights, and
/// swift-unet's own record of the model under `config`.
enum BioImageIODescription {
    /// The YAML value of `rdf.yaml`; `digests` maps each file name to its SHA-256.
    static func rdf(configuration c: UNetConfiguration, metadata: BioImageIOMetadata, testImage: BioImageIOTestImage,
                    probabilities: Bool, geometry g: BioImageIOPackage.Geometry, checkpoint: CheckpointSummary?,
                    parameterCount: Int, digests: [String: String], created: Date) -> YAMLValue {
        typealias F = BioImageIOPackage.FileName
        func file(_ name: String) -> YAMLValue { .map([("source", .string(name)), ("sha256", .string(digests[name] ?? ""))]) }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        var tags = BioImageIOPackage.standardTags
        for tag in metadata.tags where !tags.contains(tag) { tags.append(tag) }

        let outputID = probabilities ? ONNXExport.probabilitiesName : ONNXExport.logitsName
        var rdf: [(String, YAMLValue)] = [
            ("format_version", .string(BioImageIOPackage.formatVersion)),
            ("type", .string("model")),
            ("name", .string(metadata.name)),
            ("description", .string(metadata.description)),
            ("authors", .list(metadata.authors.map { .map([("name", .string($0))]) })),
            ("cite", .list([.map([("text", .string(BioImageIOPackage.citation.text)), ("doi", .string(BioImageIOPackage.citation.doi))])])),
            ("license", .string(metadata.license)),
            ("tags", .list(tags.map { .string($0) })),
            ("documentation", file(F.documentation)),
            ("covers", .list([file(F.cover)])),
            ("timestamp", .string(formatter.string(from: created))),
            ("inputs", .list([input(c, testImage, g, file(F.testInput))])),
            ("outputs", .list([output(c, id: outputID, probabilities: probabilities, g, file(F.testOutput))])),
            ("weights", .map([("onnx", .map([
                ("source", .string(F.weights)), ("sha256", .string(digests[F.weights] ?? "")),
                ("opset_version", .int(ONNXExport.opset)),
                ("comment", .string("Written by swift-unet: the network in evaluation mode, batch norm folded into the convolutions"
                                    + (probabilities ? ", softmax over the classes in the graph." : "."))),
            ]))])),
        ]
        rdf.append(("config", config(c, checkpoint: checkpoint, parameterCount: parameterCount)))
        return .map(rdf)
    }

    /// Channel names of the input: one EM channel, or for 2N+1 channels the slice and its neighbours.
    static func inputChannelNames(_ channels: Int) -> [String] {
        if channels == 1 { return ["em"] }
        if channels % 2 == 1 {
            let n = channels / 2
            return (-n...n).map { $0 == 0 ? "z" : ($0 < 0 ? "z\($0)" : "z+\($0)") }
        }
        return (0..<channels).map { "channel\($0)" }
    }

    /// Channel names of the output: membrane and cell for two classes (the ISBI labels), else class0...
    static func outputChannelNames(_ classes: Int) -> [String] {
        classes == 2 ? ["membrane", "cell"] : (0..<classes).map { "class\($0)" }
    }

    private static func input(_ c: UNetConfiguration, _ image: BioImageIOTestImage, _ g: BioImageIOPackage.Geometry,
                              _ testTensor: YAMLValue) -> YAMLValue {
        func space(_ id: String) -> YAMLValue {
            .map([("type", .string("space")), ("id", .string(id)), ("size", .map([("min", .int(g.min)), ("step", .int(g.step))]))])
        }
        var preprocessing: [YAMLValue] = [.map([("id", .string("ensure_dtype")), ("kwargs", .map([("dtype", .string("float32"))]))])]
        let n = image.normalization
        if !(n.offset == 0 && n.scale == 1) {
            // The trainer computes (v - offset) * scale; scale_linear computes gain * v + offset.
            preprocessing.append(.map([("id", .string("scale_linear")), ("kwargs", .map([
                ("gain", .double(decimal(n.scale))), ("offset", .double(n.offset == 0 ? 0 : decimal(-n.offset * n.scale))),
            ]))]))
        }
        let channelDescription = c.inputChannels == 1 ? "one EM slice" : "a slice and its neighbours as channels"
        return .map([
            ("id", .string(BioImageIOPackage.inputID)),
            ("description", .string("Raw EM image (\(channelDescription)), intensities in [\(decimal(image.rawRange.lowerBound)), \(decimal(image.rawRange.upperBound))]")),
            ("axes", .list([
                .map([("type", .string("batch"))]),
                .map([("type", .string("channel")), ("channel_names", .list(inputChannelNames(c.inputChannels).map { .string($0) }))]),
                space("y"), space("x"),
            ])),
            ("test_tensor", testTensor),
            ("data", .map([("type", .string("float32")),
                           ("range", .list([.double(decimal(image.rawRange.lowerBound)), .double(decimal(image.rawRange.upperBound))]))])),
            ("preprocessing", .list(preprocessing)),
        ])
    }

    private static func output(_ c: UNetConfiguration, id: String, probabilities: Bool, _ g: BioImageIOPackage.Geometry,
                               _ testTensor: YAMLValue) -> YAMLValue {
        func space(_ axis: String) -> YAMLValue {
            var fields: [(String, YAMLValue)] = [
                ("type", .string("space")), ("id", .string(axis)),
                ("size", .map([("tensor_id", .string(BioImageIOPackage.inputID)), ("axis_id", .string(axis)), ("offset", .int(g.offset))])),
            ]
            if g.halo > 0 { fields.append(("halo", .int(g.halo))) }
            return .map(fields)
        }
        let what = probabilities ? "Class probabilities (softmax over the channels)" : "Class logits (softmax them for probabilities)"
        let classes = c.classes == 2 ? "channel 1 cell, channel 0 membrane" : "one channel per class"
        var data: [(String, YAMLValue)] = [("type", .string("float32"))]
        if probabilities { data.append(("range", .list([.double(0), .double(1)]))) }
        return .map([
            ("id", .string(id)),
            ("description", .string("\(what); \(classes)")),
            ("axes", .list([
                .map([("type", .string("batch"))]),
                .map([("type", .string("channel")), ("channel_names", .list(outputChannelNames(c.classes).map { .string($0) }))]),
                space("y"), space("x"),
            ])),
            ("test_tensor", testTensor),
            ("data", .map(data)),
        ])
    }

    /// `config.bioimageio` (the spec's optional training details) and `config.swift-unet` (the
    /// architecture as `unet` records it, and the checkpoint's epoch and best metric).
    private static func config(_ c: UNetConfiguration, checkpoint: CheckpointSummary?, parameterCount: Int) -> YAMLValue {
        var bioimageio: [(String, YAMLValue)] = [
            ("architecture_type", .string("U-Net")),
            ("modality", .string("electron microscopy")),
            ("target_structure", .list([.string("cell membranes")])),
            ("task", .string("semantic segmentation")),
            ("model_parameter_count", .int(parameterCount)),
        ]
        if let t = checkpoint?.training {
            bioimageio.append(("training", .map([
                ("training_epochs", .double(Double(checkpoint?.completedEpochs ?? t.epochs))),
                ("training_batch_size", .double(Double(t.batchSize))),
                ("initial_learning_rate", .double(decimal(t.learningRate))),
                ("optimizer", .string(t.optimizer.rawValue)),
                ("loss_function", .string(t.loss.rawValue)),
            ])))
        }
        var unet: [(String, YAMLValue)] = [
            ("input_channels", .int(c.inputChannels)), ("classes", .int(c.classes)), ("base_filters", .int(c.baseFilters)),
            ("depth", .int(c.depth)), ("padding", .string(c.padding.rawValue)), ("batch_norm", .bool(c.batchNorm)),
            ("dropout", .double(decimal(c.dropout))), ("activation", .string(c.activation.rawValue)),
            ("upsampling", .string(c.upsampling.rawValue)),
        ]
        if let checkpoint {
            unet.append(("checkpoint", .string(checkpoint.url.lastPathComponent)))
            unet.append(("epochs", .int(checkpoint.completedEpochs)))
            if let best = checkpoint.bestEpoch { unet.append(("best_epoch", .int(best))) }
            if let jaccard = checkpoint.bestMeanJaccard { unet.append(("best_mean_validation_jaccard", .double(jaccard))) }
        }
        return .map([("bioimageio", .map(bioimageio)), ("swift-unet", .map(unet))])
    }

    /// A Float as the Double with its shortest decimal digits (0.003921569, not 0.0039215688593685627).
    static func decimal(_ f: Float) -> Double { Double("\(f)") ?? Double(f) }
}
