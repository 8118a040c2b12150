import Foundation
import NN
import Tensor
@testable import UNet
import XCTest

/// The bioimage.io package: its geometry against the network's, its files and `rdf.yaml`, the test
/// tensors against the model, refusals of bad metadata and test images, and (when the `bioimageio`
/// command of bioimageio.core is on PATH) `bioimageio test` passing on packages of several
/// architectures, offline.
final class BioImageIOPackageTests: XCTestCase {
    private let created = Date(timeIntervalSince1970: 1_796_034_277)  // 2026-11-30T10:24:37Z

    // MARK: geometry

    func testGeometryDeclaresExactlyTheSizesTheNetworkTakes() {
        let tutorial = BioImageIOPackage.geometry(UNetConfiguration(baseFilters: 16))
        // Same padding, depth 4: context margin 112 (radius 107 rounded up to 16); the smallest
        // multiple of 16 above 2 * 112.
        XCTAssertEqual(tutorial, BioImageIOPackage.Geometry(min: 240, step: 16, halo: 112, offset: 0))
        XCTAssertEqual(BioImageIOPackage.testImageSide(for: UNetConfiguration(baseFilters: 16)), 256)
        for padding in UNetConfiguration.Padding.allCases {
            for depth in 1...5 {
                let c = UNetConfiguration(baseFilters: 2, depth: depth, padding: padding)
                let g = BioImageIOPackage.geometry(c)
                XCTAssertGreaterThan(g.min - 2 * g.halo, 0, "the spec needs an output larger than twice the halo")
                for side in 1...(g.min + 5 * g.step) {
                    let declared = g.accepts(side)
                    if declared {
                        XCTAssertEqual(c.outputSize(forInputSize: side), side + g.offset, "\(padding) depth \(depth) side \(side)")
                    } else if padding == .valid {
                        XCTAssertTrue(side < g.min || c.outputSize(forInputSize: side) == nil, "\(padding) depth \(depth): \(side) is valid but not declared")
                    }
                }
                XCTAssertTrue(g.accepts(BioImageIOPackage.testImageSide(for: c)))
                XCTAssertGreaterThanOrEqual(BioImageIOPackage.testImageSide(for: c), 256)
                if padding == .valid { XCTAssertEqual(g.halo, 0) } else { XCTAssertEqual(g.offset, 0) }
            }
        }
        // The paper's network: 572 -> 388 (184 pixels smaller), sizes 188 + 16 n.
        let paper = BioImageIOPackage.geometry(UNetConfiguration(padding: .valid))
        XCTAssertEqual(paper.offset, -184)
        XCTAssertTrue(paper.accepts(572))
        XCTAssertEqual(paper.min, 188)
    }

    // MARK: the package

    func testPackageFilesDescriptionAndTestTensors() throws {
        let c = UNetConfiguration(baseFilters: 2, depth: 2)
        let model = makeModel(c, seed: 1)
        let image = BioImageIOTestImage.synthetic(side: BioImageIOPackage.testImageSide(for: c))
        let metadata = BioImageIOMetadata(name: "Test model (base 2)", description: "A \"test\": model\nwith # and : in it",
                                          authors: ["Ada Lovelace", "Charles Babbage"], license: "CC-BY-4.0", tags: ["isbi2012", "unet"])
        let package = try BioImageIOPackage(model: model, metadata: metadata, testImage: image, probabilities: true,
                                            producerVersion: "swift-unet 9.9", created: created)
        XCTAssertEqual(package.files.map(\.name), ["rdf.yaml", "README.md", "cover.png", "test_input.npy", "test_output.npy", "weights.onnx"])
        let files = Dictionary(uniqueKeysWithValues: package.files.map { ($0.name, $0.bytes) })

        // The test output is the model's softmax on the normalized test image.
        XCTAssertEqual(package.testInput.shape, [1, 1, 256, 256])
        XCTAssertEqual(package.testInput.scalars, image.pixels)
        XCTAssertGreaterThan(image.pixels.max()!, 100, "raw 8-bit values, not normalized ones")
        model.eval()
        let expected = withoutGradients { model(Tensor(shape: [1, 1, 256, 256], scalars: image.pixels.map { $0 / 255 })) }.softmax(alongAxis: 1)
        XCTAssertEqual(package.testOutput.shape, [1, 2, 256, 256])
        XCTAssertLessThan(zip(package.testOutput.scalars, expected.scalars).map { abs($0 - $1) }.max()!, 1e-6)
        XCTAssertEqual(files["test_input.npy"], try NumpyFile.float32(image.pixels, shape: [1, 1, 256, 256]))
        XCTAssertEqual(files["test_output.npy"], try NumpyFile.float32(package.testOutput.scalars, shape: [1, 2, 256, 256]))
        XCTAssertEqual(files["weights.onnx"], try ONNXExport.data(for: model, probabilities: true, logits: false, producerVersion: "swift-unet 9.9"))
        let cover = try PNG.decode(files["cover.png"]!)
        XCTAssertEqual([cover.width, cover.height, cover.channels], [512, 256, 3], "a 2:1 RGB cover")

        // rdf.yaml names every file with its SHA-256, and the geometry, pre- and postprocessing.
        let rdf = package.description
        XCTAssertEqual(files["rdf.yaml"], Array(rdf.utf8))
        for name in ["README.md", "cover.png", "test_input.npy", "test_output.npy", "weights.onnx"] {
            XCTAssertTrue(rdf.contains("source: \"\(name)\"\n") && rdf.contains("sha256: \"\(SHA256.hexDigest(files[name]!))\""), name)
        }
        XCTAssertTrue(rdf.hasPrefix("format_version: \"0.5.4\"\ntype: \"model\"\nname: \"Test model (base 2)\"\n"), rdf)
        XCTAssertTrue(rdf.contains("description: \"A \\\"test\\\": model\\nwith # and : in it\"\n"), rdf)
        XCTAssertTrue(rdf.contains("authors:\n  - name: \"Ada Lovelace\"\n  - name: \"Charles Babbage\"\n"), rdf)
        XCTAssertTrue(rdf.contains("doi: \"10.1007/978-3-319-24574-4_28\""), rdf)
        XCTAssertTrue(rdf.contains("license: \"CC-BY-4.0\"\n"), rdf)
        XCTAssertTrue(rdf.contains("tags: [\"unet\", \"2d\", \"electron-microscopy\", \"cell-membrane\", \"semantic-segmentation\", \"onnx\", \"swift-unet\", \"isbi2012\"]\n"), rdf)
        XCTAssertTrue(rdf.contains("timestamp: \"2026-11-30T10:24:37Z\"\n"), rdf)
        let g = BioImageIOPackage.geometry(c)
        XCTAssertTrue(rdf.contains("""
                  - type: "space"
                    id: "y"
                    size:
                      min: \(g.min)
                      step: 4

            """), rdf)
        XCTAssertTrue(rdf.contains("""
                data:
                  type: "float32"
                  range: [0.0, 255.0]
                preprocessing:
                  - id: "ensure_dtype"
                    kwargs:
                      dtype: "float32"
                  - id: "scale_linear"
                    kwargs:
                      gain: 0.003921569
                      offset: 0.0
            """), rdf)
        XCTAssertTrue(rdf.contains("""
              - id: "probabilities"
            """), rdf)
        XCTAssertTrue(rdf.contains("""
                  - type: "space"
                    id: "x"
                    size:
                      tensor_id: "input"
                      axis_id: "x"
                      offset: 0
                    halo: \(g.halo)
            """), rdf)
        XCTAssertTrue(rdf.contains("channel_names: [\"membrane\", \"cell\"]"), rdf)
        XCTAssertTrue(rdf.contains("opset_version: 17\n"), rdf)
        XCTAssertFalse(rdf.contains("http"), "no URL for a consumer to fetch")

        let readme = String(decoding: files["README.md"]!, as: UTF8.self)
        XCTAssertTrue(readme.hasPrefix("# Test model (base 2)\n"), readme)
        XCTAssertTrue(readme.contains("## Validation"), "the spec warns without a validation section")
        XCTAssertTrue(readme.contains("\(g.min) + n * 4"), readme)
        XCTAssertTrue(readme.contains("synthetic EM"), readme)
        XCTAssertTrue(readme.contains("10.1007/978-3-319-24574-4_28"), readme)
    }

    func testValidPaddingLogitsPackageDescribesTheSmallerOutput() throws {
        let c = UNetConfiguration(baseFilters: 2, depth: 2, padding: .valid, batchNorm: false, activation: .relu)
        let model = makeModel(c, seed: 2)
        let side = BioImageIOPackage.testImageSide(for: c)
        let package = try BioImageIOPackage(model: model, metadata: .defaults(for: c), testImage: .synthetic(side: side),
                                            probabilities: false, created: created)
        let g = BioImageIOPackage.geometry(c)
        XCTAssertLessThan(g.offset, 0)
        XCTAssertEqual(package.testOutput.shape, [1, 2, side + g.offset, side + g.offset])
        let rdf = package.description
        XCTAssertTrue(rdf.contains("  - id: \"logits\"\n"), rdf)
        XCTAssertTrue(rdf.contains("offset: \(g.offset)\n"), rdf)
        XCTAssertFalse(rdf.contains("halo:"), rdf)
        XCTAssertFalse(rdf.contains("range: [0.0, 1.0]"), "logits have no range")
        XCTAssertTrue(rdf.contains("name: \"EM membrane U-Net (swift-unet base 2 depth 2)\""), rdf)
        XCTAssertTrue(rdf.contains("  - name: \"swift-unet user\"\n"), rdf)
        XCTAssertTrue(rdf.contains("license: \"MIT\"\n"), rdf)
        // Logits: the head's output; the ONNX graph has no softmax.
        XCTAssertEqual(try ONNXExport.graph(for: model, probabilities: false).outputs.map(\.name), ["logits"])
        let onlyProbabilities = try ONNXExport.graph(for: model, probabilities: true, logits: false)
        XCTAssertEqual(onlyProbabilities.outputs.map(\.name), ["probabilities"])
        XCTAssertEqual(onlyProbabilities.nodes.last?.opType, "Softmax")
    }

    func testContextSliceModelsTakeTheirSlicesAsChannels() throws {
        let c = UNetConfiguration(inputChannels: 3, classes: 3, baseFilters: 2, depth: 1)
        let image = BioImageIOTestImage.synthetic(side: BioImageIOPackage.testImageSide(for: c), channels: 3)
        XCTAssertEqual(image.pixels.count, 3 * image.height * image.width)
        XCTAssertNotEqual(image.pixels[0..<(image.height * image.width)], image.pixels[(image.height * image.width)..<(2 * image.height * image.width)])
        let package = try BioImageIOPackage(model: makeModel(c, seed: 3), metadata: .defaults(for: c), testImage: image,
                                            probabilities: true, created: created)
        XCTAssertEqual(package.testInput.shape, [1, 3, image.height, image.width])
        XCTAssertTrue(package.description.contains("channel_names: [\"z-1\", \"z\", \"z+1\"]"), package.description)
        XCTAssertTrue(package.description.contains("channel_names: [\"class0\", \"class1\", \"class2\"]"), package.description)
        XCTAssertEqual(BioImageIODescription.inputChannelNames(5), ["z-2", "z-1", "z", "z+1", "z+2"])
        XCTAssertEqual(BioImageIODescription.inputChannelNames(2), ["channel0", "channel1"])
    }

    func testCheckpointMetadataGoesIntoTheDocumentation() throws {
        // A checkpoint recording a data folder with a float stack outside [0, 1] and a history.
        let folder = makeTemporaryFolder(self)
        let data = folder.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let side = 60
        var volume = SyntheticEM(width: side, height: side).stacks(count: 2).volume
        volume.pixels = volume.pixels.map { $0 * 4 - 100 }  // float data in [-100, 920]
        volume.format = .float32
        try volume.write(to: data.appendingPathComponent(ISBIDataset.volumeFileName), format: .float32)
        let c = UNetConfiguration(baseFilters: 2, depth: 2)
        let model = makeModel(c, seed: 4)
        var training = TrainingConfiguration()
        training.learningRate = 0.002
        training.flips = false; training.plainEpochs = 1
        let history = [EpochRecord(epoch: 1, trainCost: 0.5, validationCost: 0.4, validationAccuracy: 0.8, validationJaccard: [0.6, 0.7],
                                   seconds: 1, learningRate: 0.002)]
        let encoder = JSONEncoder()
        func json<T: Encodable>(_ v: T) -> String { String(decoding: try! encoder.encode(v), as: UTF8.self) }
        let file = folder.appendingPathComponent("best.safetensors")
        try TrainingCheckpoint.save(model: model, metadata: [
            MetadataKey.model: json(c), MetadataKey.training: json(training), MetadataKey.epoch: "1",
            MetadataKey.history: json(history), MetadataKey.data: data.path,
            MetadataKey.bestEpoch: "1", MetadataKey.bestMeanJaccard: "0.65",
        ], to: file.path)
        let checkpoint = try CheckpointSummary.load(from: file)

        // The crop fits the 60-pixel pages: the largest declared side (52 + 4 n), 60.
        let (image, note) = BioImageIOTestImage.forCheckpoint(checkpoint)
        XCTAssertNil(note)
        XCTAssertEqual([image.height, image.width], [60, 60])
        XCTAssertEqual(image.rawRange.lowerBound, volume.valueRange!.lowerBound)
        XCTAssertEqual(image.rawRange.upperBound, volume.valueRange!.upperBound, accuracy: 0.01)
        XCTAssertLessThan(image.rawRange.lowerBound, 0)
        XCTAssertEqual(image.pixels, volume.page(0))
        XCTAssertGreaterThanOrEqual(image.normalizedPixels.min()!, 0)
        XCTAssertLessThanOrEqual(image.normalizedPixels.max()!, 1.0001)
        XCTAssertTrue(image.origin.contains("train-volume.tif"), image.origin)
        let package = try BioImageIOPackage(model: try checkpoint.makeModel(), metadata: .defaults(for: c), testImage: image,
                                            probabilities: true, checkpoint: checkpoint, created: created)
        let rdf = package.description
        // (v - min) / (max - min) as gain * v + offset.
        let n = image.normalization
        XCTAssertTrue(rdf.contains("gain: \(n.scale)\n"), rdf)
        XCTAssertTrue(rdf.contains("offset: \(-n.offset * n.scale)\n"), rdf)
        XCTAssertTrue(rdf.contains("initial_learning_rate: 0.002\n"), rdf)
        XCTAssertTrue(rdf.contains("best_mean_validation_jaccard: 0.65\n"), rdf)
        let readme = String(decoding: package.files.first { $0.name == "README.md" }!.bytes, as: UTF8.self)
        XCTAssertTrue(readme.contains("the folder `data`"), readme)
        XCTAssertTrue(readme.contains("| 1 | 0.5000 | 0.4000 | 0.8000 | 0.6000 | 0.7000 | 0.6500 |"), readme)
        XCTAssertTrue(readme.contains("best mean validation Jaccard 0.6500 at epoch 1"), readme)
        XCTAssertTrue(readme.contains("augmentation no flips, rotation 25.0 deg, shear 0.41 rad, elastic sigma 10.0 px, none in the last 1 epoch(s), seed 0"),
                      "the model card states the augmentation the checkpoint records: \(readme)")
        XCTAssertFalse(readme.contains(folder.path), "no local paths in the package")
        XCTAssertFalse(rdf.contains(folder.path), "no local paths in the package")

        // Pages smaller than the smallest input (52): the synthetic slice, and why.
        try SyntheticEM(width: 50, height: 80).stacks(count: 1).volume.write(to: data.appendingPathComponent(ISBIDataset.volumeFileName))
        let (small, smallWhy) = BioImageIOTestImage.forCheckpoint(checkpoint)
        XCTAssertTrue(small.origin.contains("synthetic EM"), small.origin)
        XCTAssertTrue(smallWhy?.contains("(50 x 80) are smaller than the model's smallest input, 52 x 52") == true, smallWhy ?? "nil")

        // Without readable data: the synthetic slice, and why.
        try FileManager.default.removeItem(at: data)
        let (fallback, why) = BioImageIOTestImage.forCheckpoint(checkpoint)
        XCTAssertEqual(fallback.height, BioImageIOPackage.testImageSide(for: c))
        XCTAssertTrue(fallback.origin.contains("synthetic EM"), fallback.origin)
        XCTAssertTrue(why?.contains("not readable") == true, why ?? "nil")
    }

    // MARK: refusals

    func testBadMetadataIsRefusedNamingTheField() {
        let good = BioImageIOMetadata.defaults(for: UNetConfiguration())
        XCTAssertNoThrow(try good.validate())
        func expect(_ change: (inout BioImageIOMetadata) -> Void, field: String) {
            var m = good
            change(&m)
            XCTAssertThrowsError(try m.validate(), field) { error in
                guard case .invalidMetadata(let f, _, _)? = error as? BioImageIOExportError else { return XCTFail("\(error)") }
                XCTAssertEqual(f, field)
                XCTAssertTrue("\(error)".contains("expected"), "\(error)")
            }
        }
        expect({ $0.name = "abc" }, field: "name")
        expect({ $0.name = "a name with / slash" }, field: "name")
        expect({ $0.name = "emoji 🦈 name" }, field: "name")
        expect({ $0.name = String(repeating: "n", count: 129) }, field: "name")
        expect({ $0.description = String(repeating: "d", count: 1025) }, field: "description")
        expect({ $0.authors = [] }, field: "author")
        expect({ $0.authors = ["A/B"] }, field: "author")
        expect({ $0.authors = ["  "] }, field: "author")
        expect({ $0.license = "MIT License" }, field: "license")
        expect({ $0.license = "" }, field: "license")
        expect({ $0.tags = ["ok", ""] }, field: "tag")
    }

    func testTestImagesThatDoNotFitAreRefused() {
        let c = UNetConfiguration(baseFilters: 2, depth: 2)
        let model = makeModel(c, seed: 5)
        let side = BioImageIOPackage.testImageSide(for: c)
        func expect(_ image: BioImageIOTestImage, mentioning text: String) {
            XCTAssertThrowsError(try BioImageIOPackage(model: model, metadata: .defaults(for: c), testImage: image, probabilities: true)) { error in
                guard case .invalidTestImage? = error as? BioImageIOExportError else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains(text), "\(error)")
            }
        }
        expect(.synthetic(side: side, channels: 2), mentioning: "2 channels")
        expect(.synthetic(side: side + 1), mentioning: "side \(side + 1)")
        var nan = BioImageIOTestImage.synthetic(side: side)
        nan.pixels[7] = .nan
        expect(nan, mentioning: "NaN")
        // Sides are checked before anything is multiplied or allocated.
        expect(BioImageIOTestImage(pixels: [1], channels: 1, height: Int.max / 2, width: Int.max / 2,
                                   normalization: IntensityNormalization(format: .uint8, range: nil), rawRange: 0...255, origin: "hostile"),
               mentioning: "at most 4096")
        var short = BioImageIOTestImage.synthetic(side: side)
        short.pixels.removeLast()
        expect(short, mentioning: "values for")
    }

    func testCropsOfStacksThatDoNotFitAreRefused() throws {
        let folder = makeTemporaryFolder(self)
        let file = folder.appendingPathComponent("v.tif")
        try SyntheticEM(width: 40, height: 30).stacks(count: 2).volume.write(to: file, format: .uint8)
        XCTAssertThrowsError(try BioImageIOTestImage.crop(ofStack: file.path, side: 32)) { error in
            XCTAssertTrue("\(error)".contains("40 x 30") && "\(error)".contains(file.path), "\(error)")
        }
        XCTAssertThrowsError(try BioImageIOTestImage.crop(ofStack: file.path, side: 16, channels: 3)) { error in
            XCTAssertTrue("\(error)".contains("2 pages"), "\(error)")
        }
        let crop = try BioImageIOTestImage.crop(ofStack: file.path, side: 16, channels: 2)
        XCTAssertEqual(crop.pixels.count, 2 * 16 * 16)
        XCTAssertEqual(crop.rawRange, 0...255)
        XCTAssertThrowsError(try BioImageIOTestImage.crop(ofStack: folder.appendingPathComponent("missing.tif").path, side: 16)) {
            XCTAssertTrue($0 is TIFFError, "\($0)")
        }
        try Data("not a tiff".utf8).write(to: file)
        XCTAssertThrowsError(try BioImageIOTestImage.crop(ofStack: file.path, side: 16)) { XCTAssertTrue($0 is TIFFError, "\($0)") }
    }

    func testNonFiniteWeightsAreRefused() {
        let c = UNetConfiguration(baseFilters: 2, depth: 1)
        let model = makeModel(c, seed: 6)
        model.head.bias!.value = Tensor(repeating: .nan, shape: [2])
        XCTAssertThrowsError(try BioImageIOPackage(model: model, metadata: .defaults(for: c),
                                                   testImage: .synthetic(side: BioImageIOPackage.testImageSide(for: c)), probabilities: true)) { error in
            guard case .onnx? = error as? BioImageIOExportError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("head.bias"), "\(error)")
        }
    }

    func testWriteIsAtomicAndReadsBack() throws {
        let c = UNetConfiguration(baseFilters: 2, depth: 1)
        let package = try BioImageIOPackage(model: makeModel(c, seed: 7), metadata: .defaults(for: c),
                                            testImage: .synthetic(side: BioImageIOPackage.testImageSide(for: c)), probabilities: true)
        let folder = makeTemporaryFolder(self)
        let url = folder.appendingPathComponent("model.zip")
        try package.write(to: url)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.zip"])
        let entries = try TinyZip.read([UInt8](Data(contentsOf: url)))
        XCTAssertEqual(entries.map(\.name), package.files.map(\.name))
        XCTAssertEqual(entries.map(\.content), package.files.map(\.bytes))
        XCTAssertThrowsError(try package.write(to: folder.appendingPathComponent("missing/model.zip"))) { XCTAssertTrue($0 is FileWriteError, "\($0)") }
    }

    // MARK: bioimageio test

    func testBioimageioTestPassesOffline() throws {
        guard let tool = bioimageioCommand() else {
            let reason = "no `bioimageio` command on PATH (pip install bioimageio.core==0.11.0 onnxruntime 'pydantic<2.12'; .ci/run does)"
            print("BioImageIOPackageTests: skipping `bioimageio test`: \(reason)")
            throw XCTSkip(reason)
        }
        // Without network when the system lets us make a network namespace (unshare -n), so the test
        // shows the package needs nothing from the internet; otherwise as is.
        let offline = (try? runTool("/usr/bin/unshare", ["-n", "true"])) != nil
        print("BioImageIOPackageTests: running `bioimageio test` \(offline ? "offline (unshare -n)" : "with the network as it is (unshare -n unavailable)")")
        let folder = makeTemporaryFolder(self)
        // The last case: float data outside [0, 1], so the preprocessing has an offset.
        var floatImage = BioImageIOTestImage.synthetic(side: BioImageIOPackage.testImageSide(for: UNetConfiguration(baseFilters: 2, depth: 2)))
        floatImage.pixels = floatImage.pixels.map { $0 * 4 - 100 }
        floatImage.normalization = IntensityNormalization(format: .float32, range: -100...920)
        floatImage.rawRange = -100...920
        let cases: [(UNetConfiguration, probabilities: Bool, image: BioImageIOTestImage?)] = [
            (UNetConfiguration(baseFilters: 2, depth: 2), true, nil),
            (UNetConfiguration(baseFilters: 2, depth: 2, padding: .valid, batchNorm: false, activation: .relu, upsampling: .halveChannels), false, nil),
            (UNetConfiguration(inputChannels: 3, baseFilters: 2, depth: 1), true, nil),
            (UNetConfiguration(baseFilters: 2, depth: 2), true, floatImage),
        ]
        for (index, (c, probabilities, image)) in cases.enumerated() {
            let side = BioImageIOPackage.testImageSide(for: c)
            let package = try BioImageIOPackage(model: makeModel(c, seed: UInt64(10 + index)), metadata: .defaults(for: c),
                                                testImage: image ?? .synthetic(side: side, channels: c.inputChannels), probabilities: probabilities)
            if image != nil { XCTAssertTrue(package.description.contains("gain: 0.0009803922\n") && !package.description.contains("offset: 0.0\n"), package.description) }
            let url = folder.appendingPathComponent("case\(index).zip")
            try package.write(to: url)
            var status: Int32 = 0
            let arguments = ["test", url.path]
            let output = (try? runTool(offline ? "/usr/bin/unshare" : tool, offline ? ["-n", tool] + arguments : arguments, status: &status))
                ?? "(failed)"
            XCTAssertEqual(status, 0, "case \(index) (\(c.summary)): bioimageio test failed:\n\(output)")
            XCTAssertTrue(output.contains("passed"), "case \(index): \(output)")
            XCTAssertTrue(output.contains("Reproduce test outputs from test inputs (onnx)"), "case \(index): \(output)")
            XCTAssertFalse(output.contains("❌"), "case \(index): \(output)")
        }
    }

    private func bioimageioCommand() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/bioimageio"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// A model with random batch-norm statistics, so folding and the test outputs are not trivial.
    private func makeModel(_ c: UNetConfiguration, seed: UInt64) -> UNetModel {
        var rng = SeededGenerator(seed: seed)
        let model = UNetModel(configuration: c, generator: &rng)
        var norms = model.encoder.flatMap { [$0.bn1, $0.bn2] } + [model.bottleneck.bn1, model.bottleneck.bn2]
        norms += model.decoder.flatMap { [$0.upNorm, $0.convs.bn1, $0.convs.bn2] }
        for case let norm? in norms {
            let n = norm.channels
            norm.runningMean.value = Tensor.randomUniform([n], lowerBound: -0.3, upperBound: 0.3, generator: &rng)
            norm.runningVariance.value = Tensor.randomUniform([n], lowerBound: 0.5, upperBound: 2, generator: &rng)
        }
        return model
    }
}
