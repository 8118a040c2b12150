import Tensor

/// The training objective.
public enum LossKind: String, Codable, Sendable, CaseIterable {
    /// Mean softmax cross-entropy over pixels (the tutorial).
    case crossEntropy = "cross-entropy"
    /// Cross-entropy with class-balancing weights (inverse class frequency of the training labels).
    case weighted
    /// Cross-entropy with the U-Net paper's border weight map (w0 = 10, sigma = 5) on top of class balancing.
    case borderWeighted = "border-weighted"
    /// 1 - mean soft Dice over the classes.
    case dice
    /// Cross-entropy plus (1 - mean soft Dice): the pixel-wise term keeps the probabilities
    /// calibrated, the Dice term weighs the thin membrane class as much as the large cell class.
    case crossEntropyDice = "cross-entropy+dice"

    /// True when batches must carry a per-pixel weight map.
    var needsWeightMap: Bool { self == .weighted || self == .borderWeighted }
}

/// 1 - mean over classes of the soft Dice coefficient `2 sum(p y) / (sum p + sum y)` of
/// `[N, C, H, W]` logits against integer targets `[N, H, W]` (stored as Float).
public func softDiceLoss(logits: Tensor, targets: Tensor, smoothing: Float = 1) -> Tensor {
    let (n, c, h, w) = logits.shape4("softDiceLoss")
    precondition(targets.shape == [n, h, w], "softDiceLoss: targets \(targets.shape) do not match logits \(logits.shape)")
    var oneHot = Tensor.zeros([n, c, h, w])
    let t = targets.scalars
    oneHot.withUnsafeMutableBufferPointer { p in
        for b in 0..<n { for i in 0..<(h * w) {
            let k = Int(t[b * h * w + i])
            precondition(k >= 0 && k < c, "softDiceLoss: target \(t[b * h * w + i]) is not a class in 0..<\(c)")
            p[(b * c + k) * h * w + i] = 1
        } }
    }
    let probabilities = logits.softmax(alongAxis: 1)
    let intersection = (probabilities * oneHot).sum(alongAxes: [0, 2, 3])
    let total = probabilities.sum(alongAxes: [0, 2, 3]) + oneHot.sum(alongAxes: [0, 2, 3])
    let dice = (intersection * 2 + smoothing) / (total + smoothing)
    return 1 - dice.mean()
}

/// The data loss of `kind` for one batch (weights required for the weighted kinds).
public func segmentationLoss(_ kind: LossKind, logits: Tensor, targets: Tensor, weights: Tensor?) -> Tensor {
    switch kind {
    case .crossEntropy: return softmaxCrossEntropy(logits: logits, targets: targets)
    case .weighted, .borderWeighted: return softmaxCrossEntropy(logits: logits, targets: targets, weights: weights)
    case .dice: return softDiceLoss(logits: logits, targets: targets)
    case .crossEntropyDice:
        return softmaxCrossEntropy(logits: logits, targets: targets) + softDiceLoss(logits: logits, targets: targets)
    }
}
