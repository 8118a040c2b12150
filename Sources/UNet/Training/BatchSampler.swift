import Tensor

/// One training batch: images `[B, C, T, T]` (C = 1, or 2N+1 with 2.5D context), targets `[B, T', T']` (T' = T for same padding),
/// and per-pixel loss weights of the targets' shape when the loss needs them.
public struct TrainingBatch: @unchecked Sendable {
    /// Input tiles.
    public var images: Tensor
    /// Class index per output pixel, as Float.
    public var targets: Tensor
    /// Per-pixel loss weights, or nil.
    public var weights: Tensor?
}

/// Draws augmented training tiles from labelled slices, reproducibly: batch `b` of epoch `e` depends
/// only on the seed, `e` and `b`, never on timing, so a resumed run sees the same data.
public struct BatchSampler: Sendable {
    /// Labelled slices to sample from.
    public let slices: [EMSlice]
    /// Tiles per batch.
    public let batchSize: Int
    /// Input tile side.
    public let inputSize: Int
    /// Output (target) side.
    public let outputSize: Int
    /// The augmentation (its tile size is `inputSize`).
    public let augmenter: Augmenter
    /// Loss whose weights the batches carry.
    public let loss: LossKind
    /// Class-balancing weights from the training labels (for weighted losses).
    public let classWeights: [Float]
    /// Base seed.
    public let seed: UInt64

    /// Creates a sampler that warps its tiles with `augmentation` (its tile size is set to
    /// `inputSize`).
    public init(slices: [EMSlice], batchSize: Int, inputSize: Int, outputSize: Int,
                augmentation: AugmentationConfiguration, loss: LossKind, seed: UInt64) {
        precondition(!slices.isEmpty, "BatchSampler: no training slices")
        precondition(slices.allSatisfy { $0.label != nil }, "BatchSampler: every training slice needs labels")
        precondition(slices.allSatisfy { $0.inputPlanes.count == slices[0].inputPlanes.count },
                     "BatchSampler: every slice needs the same number of input planes")
        self.slices = slices
        self.batchSize = batchSize
        self.inputSize = inputSize
        self.outputSize = outputSize
        var configuration = augmentation
        configuration.tileWidth = inputSize
        configuration.tileHeight = inputSize
        augmenter = Augmenter(configuration: configuration)
        self.loss = loss
        classWeights = WeightMaps.classWeights(counts: WeightMaps.classCounts(slices.map(\.labelPlane)))
        self.seed = seed
    }

    /// Creates a sampler with the tutorial's augmentation, or with plain random crops when
    /// `augment` is false.
    public init(slices: [EMSlice], batchSize: Int, inputSize: Int, outputSize: Int, augment: Bool,
                loss: LossKind, seed: UInt64) {
        self.init(slices: slices, batchSize: batchSize, inputSize: inputSize, outputSize: outputSize,
                  augmentation: augment ? .tutorial(tileSize: inputSize) : .none(tileWidth: inputSize, tileHeight: inputSize),
                  loss: loss, seed: seed)
    }

    /// Input channels of every tile: the slices' input planes (1, or 2N+1 with context).
    public var channels: Int { slices[0].inputPlanes.count }

    /// Batches per epoch: enough tiles to cover the training pixels about once.
    public var batchesPerEpoch: Int {
        let pixels = slices.reduce(0) { $0 + $1.width * $1.height }
        let tiles = (pixels + inputSize * inputSize - 1) / (inputSize * inputSize)
        return max(1, (tiles + batchSize - 1) / batchSize)
    }

    /// Batch `index` of `epoch`.
    public func batch(epoch: Int, index: Int) -> TrainingBatch {
        batch(epoch: epoch, index: index, items: 0..<batchSize)
    }

    /// The tiles `items` (a part of `0..<batchSize`) of batch `index` of `epoch`: each tile is the
    /// same as in the whole batch, so K processes that take a part each see, together, exactly the
    /// tiles one process would. With 2.5D context every input plane of a tile gets the same crop and
    /// transform; the labels are the centre slice's.
    public func batch(epoch: Int, index: Int, items: Range<Int>) -> TrainingBatch {
        precondition(items.lowerBound >= 0 && items.upperBound <= batchSize && !items.isEmpty,
                     "BatchSampler: items \(items) are not a part of 0..<\(batchSize)")
        let t = inputSize, o = outputSize, margin = (t - o) / 2, count = items.count, channels = self.channels
        var images = [Float](repeating: 0, count: count * channels * t * t)
        var targets = [Float](repeating: 0, count: count * o * o)
        var weights = loss.needsWeightMap ? [Float](repeating: 0, count: count * o * o) : []
        for (slot, item) in items.enumerated() {
            var rng = SeededGenerator(seed: seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index * batchSize + item) &* 0xC2B2_AE3D_27D4_EB4F))
            let slice = slices[rng.nextInt(in: 0..<slices.count)]
            let parameters = augmenter.sampleParameters(sourceWidth: slice.width, sourceHeight: slice.height, using: &rng)
            let (image, label) = augmenter.apply(parameters, image: slice.imagePlane, label: slice.labelPlane)
            let centre = channels / 2
            for (c, plane) in slice.inputPlanes.enumerated() {
                // The centre plane is the slice's image, already warped with the labels.
                let warped = c == centre ? image.pixels
                    : augmenter.apply(parameters, image: ImagePlane(width: slice.width, height: slice.height, pixels: plane),
                                      label: slice.labelPlane).image.pixels
                let start = (slot * channels + c) * t * t
                images.replaceSubrange(start..<(start + t * t), with: warped)
            }
            // Targets (and weights) cover the output window, centred for valid padding.
            let cropped = margin == 0 ? label : Augmenter.crop(image: image, label: label, x: margin, y: margin,
                                                               width: o, height: o).label
            for i in 0..<(o * o) { targets[slot * o * o + i] = Float(cropped.classes[i]) }
            if loss == .weighted {
                let map = WeightMaps.classWeightMap(labels: cropped, classWeights: classWeights)
                weights.replaceSubrange((slot * o * o)..<((slot + 1) * o * o), with: map)
            } else if loss == .borderWeighted {
                let map = WeightMaps.borderWeightMap(labels: cropped, classWeights: classWeights)
                weights.replaceSubrange((slot * o * o)..<((slot + 1) * o * o), with: map)
            }
        }
        return TrainingBatch(images: Tensor(shape: [count, channels, t, t], scalars: images),
                             targets: Tensor(shape: [count, o, o], scalars: targets),
                             weights: loss.needsWeightMap ? Tensor(shape: [count, o, o], scalars: weights) : nil)
    }
}

extension EMSlice {
    /// The image as an `ImagePlane`.
    public var imagePlane: ImagePlane { ImagePlane(width: width, height: height, pixels: image) }
    /// The labels as a `LabelPlane` (all membrane when the slice has none).
    public var labelPlane: LabelPlane {
        LabelPlane(width: width, height: height, classes: label ?? [UInt8](repeating: 0, count: width * height))
    }
}
