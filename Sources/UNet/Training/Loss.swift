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
    /// The Lovász-softmax loss (Berman et al., 2018): a convex surrogate of 1 - mean Jaccard over
    /// the classes, the score the trainer reports.
    case lovasz
    /// Cross-entropy plus the Lovász-softmax loss: the Jaccard surrogate with calibrated probabilities.
    case crossEntropyLovasz = "cross-entropy+lovasz"

    /// True when batches must carry a per-pixel weight map.
    var needsWeightMap: Bool { self == .weighted || self == .borderWeighted }
}

/// 1 - mean over classes of the soft Dice coefficient `2 sum(p y) / (sum p + sum y)` of
/// `[N, C, H, W]` logits against integer targets `[N, H, W]` (stored as Float).
public func softDiceLoss(logits: Tensor, targets: Tensor, smoothing: Float = 1) -> Tensor {
    let oneHot = oneHotTargets(targets, like: logits, caller: "softDiceLoss")
    let probabilities = logits.softmax(alongAxis: 1)
    let intersection = (probabilities * oneHot).sum(alongAxes: [0, 2, 3])
    let total = probabilities.sum(alongAxes: [0, 2, 3]) + oneHot.sum(alongAxes: [0, 2, 3])
    let dice = (intersection * 2 + smoothing) / (total + smoothing)
    return 1 - dice.mean()
}

/// The Lovász-softmax loss of `[N, C, H, W]` logits against integer targets `[N, H, W]` (stored as
/// Float), over all pixels of the batch: the mean over classes of the Lovász extension of the Jaccard
/// loss, applied to the errors `|1[y = c] - p_c|`. At one-hot probabilities it equals 1 - mean
/// Jaccard; in between it is piecewise linear in the errors. A class absent from the targets
/// contributes its largest predicted probability.
///
/// The extension's weights come from sorting each class's errors (decreasing); they are constants of
/// the current ordering, so the gradient is exact wherever no two errors tie.
public func lovaszSoftmaxLoss(logits: Tensor, targets: Tensor) -> Tensor {
    let (n, c, h, w) = logits.shape4("lovaszSoftmaxLoss")
    let oneHot = oneHotTargets(targets, like: logits, caller: "lovaszSoftmaxLoss")
    let probabilities = logits.softmax(alongAxis: 1)
    // |y - p| for y in {0, 1} is linear in p: p (1 - 2y) + y.
    let errors = probabilities * (1 - oneHot * 2) + oneHot
    let plane = h * w, pixels = n * plane
    var weights = [Float](repeating: 0, count: n * c * plane)
    let e = errors.scalars, y = oneHot.scalars
    var order = [Int](repeating: 0, count: pixels)
    for k in 0..<c {
        // Flat index of pixel j of class k in [N, C, H, W].
        func at(_ j: Int) -> Int { ((j / plane) * c + k) * plane + j % plane }
        for j in 0..<pixels { order[j] = at(j) }
        order.sort { e[$0] > e[$1] }
        var positives = 0.0
        for index in order { positives += Double(y[index]) }
        // Jaccard loss of the first i+1 errors taken as mispredicted, and its increments.
        var intersection = positives, union = positives, previous = 0.0
        for index in order {
            if y[index] == 1 { intersection -= 1 } else { union += 1 }
            let loss = union > 0 ? 1 - intersection / union : 0
            weights[index] = Float(loss - previous)
            previous = loss
        }
    }
    return (errors * Tensor(shape: [n, c, h, w], scalars: weights)).sum() / Float(c)
}

/// One-hot `[N, C, H, W]` of integer targets `[N, H, W]` (stored as Float), shaped like `logits`.
private func oneHotTargets(_ targets: Tensor, like logits: Tensor, caller: String) -> Tensor {
    let (n, c, h, w) = logits.shape4(caller)
    precondition(targets.shape == [n, h, w], "\(caller): targets \(targets.shape) do not match logits \(logits.shape)")
    var oneHot = Tensor.zeros([n, c, h, w])
    let t = targets.scalars
    oneHot.withUnsafeMutableBufferPointer { p in
        for b in 0..<n { for i in 0..<(h * w) {
            let k = Int(t[b * h * w + i])
            precondition(k >= 0 && k < c, "\(caller): target \(t[b * h * w + i]) is not a class in 0..<\(c)")
            p[(b * c + k) * h * w + i] = 1
        } }
    }
    return oneHot
}

/// The data loss of `kind` for one batch (weights required for the weighted kinds).
public func segmentationLoss(_ kind: LossKind, logits: Tensor, targets: Tensor, weights: Tensor?) -> Tensor {
    switch kind {
    case .crossEntropy: return softmaxCrossEntropy(logits: logits, targets: targets)
    case .weighted, .borderWeighted: return softmaxCrossEntropy(logits: logits, targets: targets, weights: weights)
    case .dice: return softDiceLoss(logits: logits, targets: targets)
    case .crossEntropyDice:
        return softmaxCrossEntropy(logits: logits, targets: targets) + softDiceLoss(logits: logits, targets: targets)
    case .lovasz: return lovaszSoftmaxLoss(logits: logits, targets: targets)
    case .crossEntropyLovasz:
        return softmaxCrossEntropy(logits: logits, targets: targets) + lovaszSoftmaxLoss(logits: logits, targets: targets)
    }
}
