import Foundation
import Tensor

/// A trained U-Net ready to predict: eval mode, overlap-tile inference, optional test-time augmentation.
///
/// An ensemble of several networks that take the same input (the same `inputChannels`, so the same
/// 2.5D context) and give the same classes predicts the mean of their class probabilities, as
/// nnU-Net averages its cross-validation models: each network predicts every tile (with test-time
/// augmentation if set), and the maps are averaged in the order of `models`.
public struct Segmenter {
    /// The networks whose probabilities are averaged, in eval mode (switched by `init`): one, or an
    /// ensemble.
    public let models: [UNetModel]
    /// The network, or the first of an ensemble.
    public var model: UNetModel { models[0] }
    /// Requested input tile side.
    public var tileSize: Int
    /// Average over the 8 flips/rotations.
    public var testTimeAugmentation: Bool
    /// With `testTimeAugmentation`, shift each transformed prediction onto the plain one before
    /// averaging (`SubpixelAlignment`): for models trained without flips, which learn the labels'
    /// offset against the images that the flips turn around.
    public var alignsTestTimeAugmentation: Bool

    /// Wraps `model` for inference; tiles default to 512 pixels of input.
    public init(model: UNetModel, tileSize: Int = 512, testTimeAugmentation: Bool = false,
                alignsTestTimeAugmentation: Bool = false) {
        self.init(models: [model], tileSize: tileSize, testTimeAugmentation: testTimeAugmentation,
                  alignsTestTimeAugmentation: alignsTestTimeAugmentation)
    }

    /// Wraps an ensemble for inference: its probabilities are the mean of the `models`'.
    /// `models` must not be empty, and its networks must agree on `inputChannels` and `classes`
    /// (check user-chosen models with `Segmenter.ensembleMismatch` first).
    public init(models: [UNetModel], tileSize: Int = 512, testTimeAugmentation: Bool = false,
                alignsTestTimeAugmentation: Bool = false) {
        precondition(!models.isEmpty, "Segmenter: no model")
        for other in models.dropFirst() {
            if let mismatch = Self.ensembleMismatch(other.configuration, joining: models[0].configuration) {
                preconditionFailure("Segmenter: a model \(mismatch) the first")
            }
        }
        for model in models { model.eval() }
        self.models = models
        self.tileSize = tileSize
        self.testTimeAugmentation = testTimeAugmentation
        self.alignsTestTimeAugmentation = alignsTestTimeAugmentation
    }

    /// Why a network of `configuration` cannot join an ensemble whose first network has `first`,
    /// or nil when it can. The message continues "the model ...": "takes 3 input channel(s)
    /// (context slices 1) against 1 (context slices 0) for".
    public static func ensembleMismatch(_ configuration: UNetConfiguration, joining first: UNetConfiguration) -> String? {
        if configuration.inputChannels != first.inputChannels {
            return "takes \(configuration.inputChannels) input channel(s) (context slices \(configuration.contextSlices)) against \(first.inputChannels) (context slices \(first.contextSlices)) for"
        }
        if configuration.classes != first.classes {
            return "gives \(configuration.classes) classes against \(first.classes) for"
        }
        return nil
    }

    func predictor(_ model: UNetModel) -> TiledPredictor {
        TiledPredictor(geometry: model.configuration.tileGeometry, tileSize: tileSize) { [model] in model($0) }
    }

    /// Class probabilities `[classes, H, W]` of one single-channel image (for a model without 2.5D
    /// context; see `probabilities(planes:width:height:)`).
    public func probabilities(_ image: ImagePlane) -> Tensor {
        probabilities(planes: [image.pixels], width: image.width, height: image.height)
    }

    /// Class probabilities `[classes, H, W]` of one slice from its input planes (the image, or with
    /// 2.5D context the images of slices z-N ... z+N): as many planes as the model's `inputChannels`,
    /// each `width * height` values.
    public func probabilities(planes: [[Float]], width: Int, height: Int) -> Tensor {
        precondition(planes.count == model.configuration.inputChannels,
                     "Segmenter: \(planes.count) input plane(s), the model takes \(model.configuration.inputChannels)")
        let pixels = SliceContext.stacked(planes)
        var sum: Tensor? = nil
        for model in models {
            let p = predictor(model).probabilities(pixels: pixels, channels: planes.count, height: height, width: width,
                                                   testTimeAugmentation: testTimeAugmentation,
                                                   aligned: alignsTestTimeAugmentation)
            sum = sum.map { $0 + p } ?? p
        }
        return models.count == 1 ? sum! : sum! / Float(models.count)
    }

    /// Class probabilities `[classes, H, W]` of one slice (its `inputPlanes`).
    public func probabilities(_ slice: EMSlice) -> Tensor {
        probabilities(planes: slice.inputPlanes, width: slice.width, height: slice.height)
    }

    /// The probability of `class` (default 1 = cell) for every pixel of one image (a model without context).
    public func classProbability(_ image: ImagePlane, class index: Int = 1) -> ImagePlane {
        classProbability(planes: [image.pixels], width: image.width, height: image.height, class: index)
    }

    /// The probability of `class` (default 1 = cell) for every pixel of one slice given by its input planes.
    public func classProbability(planes: [[Float]], width: Int, height: Int, class index: Int = 1) -> ImagePlane {
        let p = probabilities(planes: planes, width: width, height: height)
        let plane = p.slice(alongAxis: 0, index..<(index + 1)).scalars
        return ImagePlane(width: width, height: height, pixels: plane)
    }

    /// Cell-probability maps (1 = cell, the labels' polarity) for every page of a stack normalized
    /// to [0, 1]: the ISBI submission format when written as 32-bit float. A model with 2.5D context
    /// sees each page's neighbours in the stack (mirrored at its ends).
    public func predict(stack: ImageStack, progress: ((Int, Int) -> Void)? = nil) -> ImageStack {
        var out = ImageStack(width: stack.width, height: stack.height, pages: stack.pages,
                             pixels: [Float](repeating: 0, count: stack.pixels.count), format: .float32)
        let radius = model.configuration.contextSlices
        for page in 0..<stack.pages {
            let planes = SliceContext.indices(of: page, radius: radius, pages: stack.pages).map { stack.page($0) }
            out.setPage(page, classProbability(planes: planes, width: stack.width, height: stack.height).pixels)
            progress?(page + 1, stack.pages)
        }
        return out
    }
}

/// What `evaluate` measures on labelled slices.
public struct EvaluationResult: Codable, Sendable, Equatable {
    /// Mean cross-entropy per pixel.
    public var cost: Double
    /// Pixel accuracy.
    public var accuracy: Double
    /// Jaccard per class (0 = membrane, 1 = cell), confusion summed over all slices.
    public var jaccard: [Double]
    /// Mean of `jaccard`.
    public var meanJaccard: Double
    /// Dice per class.
    public var dice: [Double]
    /// Mean of `dice`.
    public var meanDice: Double
    /// The ISBI challenge's foreground-restricted Rand score (max over thresholds), when computed.
    public var vRand: Double?
    /// The ISBI challenge's information-theoretic score (max over thresholds), when computed.
    public var vInfo: Double?
    /// The cell-probability threshold where `vRand` was reached: the watershed threshold for
    /// instance labels (`CellInstances`), when computed.
    public var vRandThreshold: Float?

    enum CodingKeys: String, CodingKey {
        case cost, accuracy, jaccard, meanJaccard = "mean_jaccard", dice, meanDice = "mean_dice"
        case vRand = "v_rand", vInfo = "v_info", vRandThreshold = "v_rand_threshold"
    }
}

extension Segmenter {
    /// Scores the model on labelled slices: cost, accuracy, Jaccard and Dice from the confusion
    /// summed over all pixels, and with `isbiScores` the challenge's V_rand and V_info.
    /// `onProbabilities` sees each slice's `[classes, H, W]` probabilities (for previews).
    ///
    /// With a `collective` of K processes, each rank predicts the slices whose position in `slices`
    /// is its rank modulo K (`onProbabilities` sees only those), the confusion matrices and costs are
    /// summed over the ranks, and every rank returns the same result. For V_rand and V_info the
    /// cell-probability maps are gathered on rank 0. Every rank must pass the same slices.
    public func evaluate(_ slices: [EMSlice], isbiScores: Bool = true, collective: Collective = SingleProcess(),
                         onProbabilities: ((EMSlice, Tensor) -> Void)? = nil) -> EvaluationResult {
        let classCount = model.configuration.classes
        var confusion = ConfusionMatrix(classCount: classCount)
        var cost = 0.0, pixels = 0
        var cellMaps: [Int: ImagePlane] = [:]
        for (position, slice) in slices.enumerated() where position % collective.size == collective.rank {
            guard let label = slice.label else { continue }
            let p = probabilities(slice)
            onProbabilities?(slice, p)
            let classes = p.shape[0], n = slice.width * slice.height
            let values = p.scalars
            var predicted = [UInt8](repeating: 0, count: n)
            for i in 0..<n {
                var best = 0
                for c in 1..<classes where values[c * n + i] > values[best * n + i] { best = c }
                predicted[i] = UInt8(best)
                cost -= Double(Foundation.log(max(values[Int(label[i]) * n + i], 1e-7)))
            }
            pixels += n
            confusion.add(predicted: predicted, target: label)
            if isbiScores {
                cellMaps[position] = ImagePlane(width: slice.width, height: slice.height, pixels: Array(values[n..<(2 * n)]))
            }
        }
        if collective.size > 1 {
            var totals = confusion.counts.map(Double.init) + [cost, Double(pixels)]
            collective.allReduceSum(&totals)
            confusion = ConfusionMatrix(classCount: classCount, counts: totals[0..<(classCount * classCount)].map { Int($0) })
            cost = totals[classCount * classCount]
            pixels = Int(totals[classCount * classCount + 1])
        }
        var result = EvaluationResult(cost: cost / Double(max(pixels, 1)), accuracy: confusion.pixelAccuracy,
                                      jaccard: confusion.jaccardPerClass, meanJaccard: confusion.meanJaccard,
                                      dice: confusion.dicePerClass, meanDice: confusion.meanDice)
        let labelled = slices.indices.filter { slices[$0].label != nil }
        if isbiScores && !labelled.isEmpty {
            if collective.size > 1 { gatherOnLeader(&cellMaps, slices: slices, collective: collective) }
            var scores: [Double] = [.nan, .nan, .nan]
            if collective.isLeader {
                let isbi = ISBIMetrics.evaluate(cellProbabilities: labelled.map { cellMaps[$0]! },
                                                labels: labelled.map { slices[$0].labelPlane })
                scores = [isbi.vRand, isbi.vInfo, Double(isbi.vRandThreshold)]
            }
            if collective.size > 1 { scores.withUnsafeMutableBytes { collective.broadcast($0, from: 0) } }
            result.vRand = scores[0]
            result.vInfo = scores[1]
            result.vRandThreshold = Float(scores[2])
        }
        return result
    }

    /// Sends every rank's cell-probability maps to rank 0, which receives them in slice order.
    private func gatherOnLeader(_ maps: inout [Int: ImagePlane], slices: [EMSlice], collective: Collective) {
        for (position, slice) in slices.enumerated() where slice.label != nil {
            let owner = position % collective.size
            guard owner != 0 else { continue }
            if collective.rank == owner {
                maps[position]!.pixels.withUnsafeBytes { collective.send($0, to: 0) }
            } else if collective.isLeader {
                var pixels = [Float](repeating: 0, count: slice.width * slice.height)
                pixels.withUnsafeMutableBytes { collective.receive($0, from: owner) }
                maps[position] = ImagePlane(width: slice.width, height: slice.height, pixels: pixels)
            }
        }
    }
}
