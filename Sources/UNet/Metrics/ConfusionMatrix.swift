/// A confusion matrix of per-pixel class predictions against targets, accumulated over a whole
/// set (every batch of an epoch's validation, say), as the tutorial computes its metrics.
///
/// `count(target: t, predicted: p)` is the number of pixels whose target class is `t` and whose
/// predicted class is `p`. Jaccard and Dice come from the matrix summed over the whole set, not
/// averaged per image: Jaccard_c = TP_c / (TP_c + FP_c + FN_c), Dice_c = 2 TP_c / (2 TP_c + FP_c + FN_c).
///
/// Targets outside `0..<classCount` are a programming error (precondition). A class that occurs
/// neither as target nor as prediction has Jaccard and Dice 1 (nothing to get wrong), so a mean
/// over classes never becomes NaN.
public struct ConfusionMatrix: Sendable, Equatable, CustomStringConvertible {
    /// Number of classes (2 for membrane/cell).
    public let classCount: Int
    /// Row-major counts: `counts[target * classCount + predicted]`.
    public private(set) var counts: [Int]

    /// An empty matrix for `classCount` classes.
    public init(classCount: Int = 2) {
        precondition(classCount >= 1 && classCount <= 256, "ConfusionMatrix: classCount \(classCount)")
        self.classCount = classCount
        self.counts = [Int](repeating: 0, count: classCount * classCount)
    }

    /// A matrix with the given row-major counts (`counts[target * classCount + predicted]`), e.g. the
    /// sum of several processes' matrices.
    public init(classCount: Int, counts: [Int]) {
        precondition(counts.count == classCount * classCount && counts.allSatisfy { $0 >= 0 },
                     "ConfusionMatrix: \(counts.count) counts for \(classCount) classes")
        self.init(classCount: classCount)
        self.counts = counts
    }

    // MARK: Accumulation

    /// Adds pixels whose predicted classes are `predicted` and target classes `target` (same length).
    public mutating func add(predicted: [UInt8], target: [UInt8]) {
        precondition(predicted.count == target.count, "ConfusionMatrix: \(predicted.count) predictions, \(target.count) targets")
        let c = classCount
        counts.withUnsafeMutableBufferPointer { m in
            predicted.withUnsafeBufferPointer { p in
                target.withUnsafeBufferPointer { t in
                    for i in 0..<p.count {
                        let ti = Int(t[i]), pi = Int(p[i])
                        precondition(ti < c && pi < c, "ConfusionMatrix: class out of range (target \(ti), predicted \(pi))")
                        m[ti * c + pi] += 1
                    }
                }
            }
        }
    }

    /// Adds a predicted label plane against a target label plane of the same size.
    public mutating func add(predicted: LabelPlane, target: LabelPlane) {
        precondition(predicted.width == target.width && predicted.height == target.height, "ConfusionMatrix: plane sizes differ")
        add(predicted: predicted.classes, target: target.classes)
    }

    /// Two-class case from the class-1 (cell) probability: predicted class 1 where
    /// `probability > threshold`, else 0.
    public mutating func add(cellProbability: [Float], target: [UInt8], threshold: Float = 0.5) {
        precondition(classCount == 2, "ConfusionMatrix: a probability map needs 2 classes")
        precondition(cellProbability.count == target.count, "ConfusionMatrix: \(cellProbability.count) probabilities, \(target.count) targets")
        var tp = 0, fp = 0, fn = 0, tn = 0
        cellProbability.withUnsafeBufferPointer { p in
            target.withUnsafeBufferPointer { t in
                for i in 0..<p.count {
                    let predictedCell = p[i] > threshold
                    let targetClass = t[i]
                    precondition(targetClass < 2, "ConfusionMatrix: target class \(targetClass) out of range")
                    if targetClass == 1 {
                        if predictedCell { tp += 1 } else { fn += 1 }
                    } else {
                        if predictedCell { fp += 1 } else { tn += 1 }
                    }
                }
            }
        }
        counts[0] += tn; counts[1] += fp; counts[2] += fn; counts[3] += tp
    }

    /// Adds network outputs laid out as `[N, classCount, pixelsPerImage]` (NCHW with H*W =
    /// `pixelsPerImage`) against targets `[N, pixelsPerImage]`; the predicted class of a pixel is the
    /// argmax over its class scores (logits or probabilities alike; the first maximum wins ties).
    public mutating func add(scores: UnsafeBufferPointer<Float>, target: UnsafeBufferPointer<UInt8>, pixelsPerImage: Int) {
        let c = classCount
        precondition(pixelsPerImage > 0 && target.count % pixelsPerImage == 0, "ConfusionMatrix: targets not a multiple of pixelsPerImage")
        let images = target.count / pixelsPerImage
        precondition(scores.count == images * c * pixelsPerImage,
                     "ConfusionMatrix: \(scores.count) scores for \(images) images x \(c) classes x \(pixelsPerImage) pixels")
        counts.withUnsafeMutableBufferPointer { m in
            for n in 0..<images {
                let base = n * c * pixelsPerImage
                for i in 0..<pixelsPerImage {
                    var best = 0
                    var bestValue = scores[base + i]
                    if c > 1 {
                        for k in 1..<c {
                            let v = scores[base + k * pixelsPerImage + i]
                            if v > bestValue { bestValue = v; best = k }
                        }
                    }
                    let t = Int(target[n * pixelsPerImage + i])
                    precondition(t < c, "ConfusionMatrix: target class \(t) out of range")
                    m[t * c + best] += 1
                }
            }
        }
    }

    /// Array version of `add(scores:target:pixelsPerImage:)`.
    public mutating func add(scores: [Float], target: [UInt8], pixelsPerImage: Int) {
        scores.withUnsafeBufferPointer { s in
            target.withUnsafeBufferPointer { t in add(scores: s, target: t, pixelsPerImage: pixelsPerImage) }
        }
    }

    /// Version of `add(scores:target:pixelsPerImage:)` with Float targets (class indices stored as
    /// 0.0, 1.0, ..., as a loss takes them); each target is rounded to the nearest class.
    public mutating func add(scores: [Float], target: [Float], pixelsPerImage: Int) {
        let t = target.map { UInt8(clamping: Int(($0).rounded())) }
        add(scores: scores, target: t, pixelsPerImage: pixelsPerImage)
    }

    /// Adds a logits (or probability) tensor `[N, classCount, H, W]` against a target tensor of
    /// `N * H * W` class indices (`[N, H, W]` or `[N, 1, H, W]`, stored as Floats).
    public mutating func add(scores: Tensor, target: Tensor) {
        let (n, c, h, w) = scores.shape4("ConfusionMatrix.add")
        precondition(c == classCount, "ConfusionMatrix: scores have \(c) classes, matrix \(classCount)")
        precondition(target.count == n * h * w, "ConfusionMatrix: \(target.count) targets for \(n) x \(h) x \(w)")
        let t = target.withUnsafeBufferPointer { $0.map { UInt8(clamping: Int($0.rounded())) } }
        scores.withUnsafeBufferPointer { s in
            t.withUnsafeBufferPointer { tb in add(scores: s, target: tb, pixelsPerImage: h * w) }
        }
    }

    /// Adds every count of `other` (which must have the same number of classes) to this matrix.
    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classCount == classCount, "ConfusionMatrix: merging \(other.classCount) classes into \(classCount)")
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    /// The sum of this matrix and `other`.
    public func merging(_ other: ConfusionMatrix) -> ConfusionMatrix {
        var result = self
        result.merge(other)
        return result
    }

    /// Clears all counts.
    public mutating func reset() {
        for i in counts.indices { counts[i] = 0 }
    }

    // MARK: Counts

    /// Pixels with target class `target` predicted as `predicted`.
    public func count(target: Int, predicted: Int) -> Int { counts[target * classCount + predicted] }

    /// All pixels counted.
    public var total: Int { counts.reduce(0, +) }

    /// Pixels of class `c` predicted as `c`.
    public func truePositives(_ c: Int) -> Int { count(target: c, predicted: c) }

    /// Pixels predicted as `c` whose target is another class.
    public func falsePositives(_ c: Int) -> Int {
        var s = 0
        for t in 0..<classCount where t != c { s += count(target: t, predicted: c) }
        return s
    }

    /// Pixels of target class `c` predicted as another class.
    public func falseNegatives(_ c: Int) -> Int {
        var s = 0
        for p in 0..<classCount where p != c { s += count(target: c, predicted: p) }
        return s
    }

    // MARK: Scores

    /// Correct pixels / all pixels (0 for an empty matrix).
    public var pixelAccuracy: Double {
        let n = total
        guard n > 0 else { return 0 }
        var correct = 0
        for c in 0..<classCount { correct += truePositives(c) }
        return Double(correct) / Double(n)
    }

    /// Jaccard index (intersection over union) of class `c`: TP / (TP + FP + FN); 1 if the class
    /// occurs neither as target nor as prediction.
    public func jaccard(_ c: Int) -> Double {
        let tp = truePositives(c), denominator = tp + falsePositives(c) + falseNegatives(c)
        return denominator == 0 ? 1 : Double(tp) / Double(denominator)
    }

    /// Jaccard index of every class, indexed by class.
    public var jaccardPerClass: [Double] { (0..<classCount).map { jaccard($0) } }

    /// Mean of the per-class Jaccard indices (the tutorial's "jacc val").
    public var meanJaccard: Double { jaccardPerClass.reduce(0, +) / Double(classCount) }

    /// Dice coefficient (F1) of class `c`: 2 TP / (2 TP + FP + FN); 1 if the class occurs neither
    /// as target nor as prediction.
    public func dice(_ c: Int) -> Double {
        let tp = truePositives(c), denominator = 2 * tp + falsePositives(c) + falseNegatives(c)
        return denominator == 0 ? 1 : Double(2 * tp) / Double(denominator)
    }

    /// Dice coefficient of every class, indexed by class.
    public var dicePerClass: [Double] { (0..<classCount).map { dice($0) } }

    /// Mean of the per-class Dice coefficients.
    public var meanDice: Double { dicePerClass.reduce(0, +) / Double(classCount) }

    /// The matrix as rows of target classes.
    public var description: String {
        var lines = ["ConfusionMatrix (rows = target, columns = predicted)"]
        for t in 0..<classCount {
            lines.append((0..<classCount).map { String(count(target: t, predicted: $0)) }.joined(separator: "\t"))
        }
        return lines.joined(separator: "\n")
    }
}
