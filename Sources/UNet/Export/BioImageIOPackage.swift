import Foundation
import NN
import Tensor

/// A BioImage Model Zoo (bioimage.io) model package of a U-Net: the ZIP that Fiji/deepImageJ,
/// ilastik, napari and `bioimageio test` open. Model format 0.5 (`formatVersion`), written entirely
/// here, with no Python:
///
/// | file | content |
/// |---|---|
/// | `rdf.yaml` | the description: axes, valid sizes, pre- and postprocessing, files and their SHA-256 |
/// | `weights.onnx` | the network (`ONNXExport`, opset 17, batch norm folded) |
/// | `test_input.npy`, `test_output.npy` | a raw test image and the model's output on it, float32 |
/// | `cover.png` | the test image beside its prediction (membrane in red) |
/// | `README.md` | what the model is, its training data and metrics, how to validate it |
///
/// The input is `[batch, channel, y, x]` of raw intensities; the package's preprocessing scales them
/// to [0, 1] exactly as the trainer did (`BioImageIOTestImage.normalization`). The output is
/// `[batch, channel, y, x]`: the logits, or with `probabilities` the softmax over the classes (computed
/// in the ONNX graph, so every consumer gets probabilities). Only ONNX weights are written: the
/// spec's PyTorch state-dict entry needs a `torch.load` pickle and a Python architecture file run
/// at load time.
///
/// ```swift
/// let checkpoint = try CheckpointSummary.load(path: "runs/x/best.safetensors")
/// let model = try checkpoint.makeModel()
/// let (image, _) = BioImageIOTestImage.forCheckpoint(checkpoint)   // a crop of the training data
/// let package = try BioImageIOPackage(model: model, metadata: .defaults(for: checkpoint.model),
///                                     testImage: image, probabilities: true, checkpoint: checkpoint)
/// try package.write(to: URL(fileURLWithPath: "model.zip"))
/// ```
public struct BioImageIOPackage {
    /// The model format version of `rdf.yaml` (readers of later 0.5.x versions update it as they load).
    public static let formatVersion = "0.5.4"
    /// Tags every package has: the bioimage.io categories that apply, and the weights' format.
    public static let standardTags = ["unet", "2d", "electron-microscopy", "cell-membrane", "semantic-segmentation", "onnx", "swift-unet"]
    /// The U-Net paper, cited by every package.
    public static let citation = (text: "Ronneberger, O., Fischer, P., Brox, T.: U-Net: Convolutional Networks for Biomedical Image Segmentation. MICCAI 2015, LNCS 9351, 234-241",
                                  doi: "10.1007/978-3-319-24574-4_28")
    /// The files' names inside the package.
    public enum FileName {
        public static let description = "rdf.yaml"
        public static let weights = "weights.onnx"
        public static let testInput = "test_input.npy"
        public static let testOutput = "test_output.npy"
        public static let cover = "cover.png"
        public static let documentation = "README.md"
    }
    /// The input tensor's id.
    public static let inputID = "input"
    /// The largest test image side accepted (the package is meant to stay small).
    public static let maximumTestImageSide = 4096

    /// The files in package order, `rdf.yaml` first.
    public let files: [(name: String, bytes: [UInt8])]
    /// The `rdf.yaml` text.
    public let description: String
    /// The test input the package holds (raw values), `[1, channels, height, width]`.
    public let testInput: Tensor
    /// The model's output on it (after normalization), `[1, classes, height', width']`.
    public let testOutput: Tensor

    /// Builds the package's files: runs the model on the test image, encodes the ONNX graph, the
    /// tensors, the cover and the documentation, and describes them in `rdf.yaml`.
    ///
    /// - Parameters:
    ///   - model: the network; it is switched to evaluation mode.
    ///   - testImage: raw test image; its sides must be sizes the package declares (`testImageSide(for:)`
    ///     gives one), its channels the model's.
    ///   - probabilities: output the softmax over the classes instead of the logits.
    ///   - checkpoint: the checkpoint the model came from, for the documentation (training data,
    ///     settings, metrics); nil leaves them out.
    ///   - producerVersion: the `unet` version, recorded in the ONNX file and the documentation.
    ///   - created: the package's timestamp.
    /// - Throws: `BioImageIOExportError` for invalid metadata, a test image that does not fit, weights
    ///   that cannot be exported (NaN, over 2 GiB) or a package over 4 GiB.
    public init(model: UNetModel, metadata: BioImageIOMetadata, testImage: BioImageIOTestImage, probabilities: Bool,
                checkpoint: CheckpointSummary? = nil, producerVersion: String = "", created: Date = Date()) throws {
        try metadata.validate()
        let c = model.configuration
        let geometry = Self.geometry(c)
        guard testImage.channels == c.inputChannels else {
            throw BioImageIOExportError.invalidTestImage("it has \(testImage.channels) channels, the model takes \(c.inputChannels)")
        }
        for side in [testImage.height, testImage.width] where !geometry.accepts(side) || side > Self.maximumTestImageSide {
            throw BioImageIOExportError.invalidTestImage(
                "side \(side) is not a size the package declares (\(geometry.min) + n * \(geometry.step), at most \(Self.maximumTestImageSide))")
        }
        guard testImage.pixels.count == testImage.channels * testImage.height * testImage.width else {
            throw BioImageIOExportError.invalidTestImage("\(testImage.pixels.count) values for \(testImage.channels) x \(testImage.height) x \(testImage.width)")
        }
        guard testImage.pixels.allSatisfy(\.isFinite) else { throw BioImageIOExportError.invalidTestImage("it has NaN or infinite values") }

        model.eval()
        let onnx: [UInt8]
        do {
            onnx = try ONNXExport.data(for: model, probabilities: probabilities, logits: !probabilities, producerVersion: producerVersion)
        } catch let error as ONNXExportError {
            throw BioImageIOExportError.onnx(error)
        }
        let inputShape = [1, testImage.channels, testImage.height, testImage.width]
        testInput = Tensor(shape: inputShape, scalars: testImage.pixels)
        let logits = withoutGradients { model(Tensor(shape: inputShape, scalars: testImage.normalizedPixels)) }
        let classProbabilities = logits.softmax(alongAxis: 1)
        testOutput = probabilities ? classProbabilities : logits
        guard testOutput.scalars.allSatisfy(\.isFinite) else {
            throw BioImageIOExportError.onnx(ONNXExportError(problem: .nonFiniteWeights(name: "the output on the test image")))
        }

        let input: [UInt8], output: [UInt8]
        do {
            input = try NumpyFile.float32(testInput.scalars, shape: testInput.shape)
            output = try NumpyFile.float32(testOutput.scalars, shape: testOutput.shape)
        } catch let error as NumpyFileError {
            throw BioImageIOExportError.encoding(error.description)
        }
        let cover = try Self.cover(testImage, probabilities: classProbabilities, geometry: geometry)
        let readme = BioImageIODocumentation.readme(
            configuration: c, metadata: metadata, testImage: testImage, probabilities: probabilities, geometry: geometry,
            checkpoint: checkpoint, parameterCount: model.parameterCount, producerVersion: producerVersion)
        let digests = [
            FileName.weights: SHA256.hexDigest(onnx), FileName.testInput: SHA256.hexDigest(input),
            FileName.testOutput: SHA256.hexDigest(output), FileName.cover: SHA256.hexDigest(cover),
            FileName.documentation: SHA256.hexDigest(Array(readme.utf8)),
        ]
        description = BioImageIODescription.rdf(
            configuration: c, metadata: metadata, testImage: testImage, probabilities: probabilities, geometry: geometry,
            checkpoint: checkpoint, parameterCount: model.parameterCount, digests: digests, created: created).document
        files = [
            (FileName.description, Array(description.utf8)), (FileName.documentation, Array(readme.utf8)),
            (FileName.cover, cover), (FileName.testInput, input), (FileName.testOutput, output), (FileName.weights, onnx),
        ]
    }

    /// The ZIP archive's bytes.
    ///
    /// - Throws: `BioImageIOExportError.encoding` when the package would pass 4 GiB.
    public func zipBytes(modified: Date = Date()) throws -> [UInt8] {
        try archive(modified: modified).bytes()
    }

    /// Writes the package to `url` atomically (a complete new file or the old one).
    ///
    /// - Throws: `BioImageIOExportError.encoding` when the package would pass 4 GiB; `FileWriteError`
    ///   when the file cannot be written.
    public func write(to url: URL, modified: Date = Date()) throws {
        try archive(modified: modified).write(to: url.path)
    }

    private func archive(modified: Date) throws -> ZipArchive {
        var zip = ZipArchive(modified: modified)
        do {
            for file in files { try zip.add(file.name, file.bytes) }
        } catch let error as ZipArchiveError {
            throw BioImageIOExportError.encoding(error.description)
        }
        return zip
    }

    // MARK: geometry

    /// The input sides a package declares, `min + n * step`, and the output's relation to them.
    public struct Geometry: Sendable, Equatable {
        /// The smallest input side.
        public var min: Int
        /// The step between input sides (2^depth).
        public var step: Int
        /// Pixels a consumer should crop from each border of the output (or overlap tiles by): those
        /// the zero padding reaches (same padding: the network's context margin; valid padding: 0).
        public var halo: Int
        /// Output side minus input side: 0 for same padding, negative for valid padding (the network
        /// crops its borders itself).
        public var offset: Int

        /// True when `side` is `min + n * step` for some n >= 0.
        public func accepts(_ side: Int) -> Bool { side >= min && (side - min) % step == 0 }
    }

    /// The package's geometry for a configuration. Same padding: sides that are multiples of 2^depth
    /// and larger than twice the halo (the spec requires an output larger than its halo); valid
    /// padding: the sides `UNetConfiguration.outputSize(forInputSize:)` accepts, which are every
    /// 2^depth from the smallest, each giving an output smaller by the same amount.
    public static func geometry(_ c: UNetConfiguration) -> Geometry {
        let step = 1 << c.depth
        switch c.padding {
        case .same:
            let halo = c.tileGeometry.contextMargin
            return Geometry(min: (2 * halo + 1 + step - 1) / step * step, step: step, halo: halo, offset: 0)
        case .valid:
            let min = c.validInputSize(atLeast: 1)
            return Geometry(min: min, step: step, halo: 0, offset: c.outputSize(forInputSize: min)! - min)
        }
    }

    /// The side of the test image: the smallest declared input side of at least 256.
    public static func testImageSide(for c: UNetConfiguration) -> Int {
        let g = geometry(c)
        return g.min >= 256 ? g.min : g.min + (256 - g.min + g.step - 1) / g.step * g.step
    }

    // MARK: cover

    /// `[image | membrane overlay]`: the test image's centre channel (for valid padding, the part the
    /// output covers) beside it with the predicted membrane (class 0 for two classes, else every class
    /// but the last) tinted red; a 2:1 RGB PNG, as the spec recommends.
    static func cover(_ image: BioImageIOTestImage, probabilities: Tensor, geometry: Geometry) throws -> [UInt8] {
        let shape = probabilities.shape
        let (classes, h, w) = (shape[1], shape[2], shape[3])
        let insetY = (image.height - h) / 2, insetX = (image.width - w) / 2
        let normalized = image.normalizedPixels
        let channel = image.channels / 2
        var gray = [Float](repeating: 0, count: h * w)
        for y in 0..<h {
            for x in 0..<w { gray[y * w + x] = normalized[(channel * image.height + y + insetY) * image.width + x + insetX] }
        }
        let p = probabilities.scalars
        let last = (classes - 1) * h * w
        let membrane = (0..<(h * w)).map { 1 - p[last + $0] }
        let left = PNG.overlay(image: gray, highlight: [Float](repeating: 0, count: h * w), width: w, height: h)
        let right = PNG.overlay(image: gray, highlight: membrane.map { $0 > 0.5 ? 1 : 0 }, width: w, height: h, opacity: 0.6)
        var rgb = [UInt8]()
        rgb.reserveCapacity(6 * h * w)
        for y in 0..<h {
            rgb += left[(3 * y * w)..<(3 * (y + 1) * w)]
            rgb += right[(3 * y * w)..<(3 * (y + 1) * w)]
        }
        do {
            return try PNG.encode(pixels: rgb, width: 2 * w, height: h, channels: 3)
        } catch {
            throw BioImageIOExportError.encoding("cover image: \(error)")
        }
    }
}
