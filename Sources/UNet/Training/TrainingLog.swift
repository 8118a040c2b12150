import Foundation

/// The figures of one finished epoch.
public struct EpochRecord: Codable, Sendable, Equatable {
    /// 1-based epoch number.
    public var epoch: Int
    /// Mean training loss over the epoch's batches.
    public var trainCost: Double
    /// Mean validation loss.
    public var validationCost: Double
    /// Validation pixel accuracy.
    public var validationAccuracy: Double
    /// Validation Jaccard per class (class 0 = membrane, 1 = cell).
    public var validationJaccard: [Double]
    /// Mean of `validationJaccard`.
    public var meanValidationJaccard: Double
    /// Wall-clock seconds of the epoch (training and validation).
    public var seconds: Double
    /// The learning rate of the epoch (of its last batch during a warmup).
    public var learningRate: Double

    /// Creates a record.
    public init(epoch: Int, trainCost: Double, validationCost: Double, validationAccuracy: Double,
                validationJaccard: [Double], seconds: Double, learningRate: Double) {
        self.epoch = epoch
        self.trainCost = trainCost
        self.validationCost = validationCost
        self.validationAccuracy = validationAccuracy
        self.validationJaccard = validationJaccard
        self.meanValidationJaccard = validationJaccard.isEmpty ? 0 : validationJaccard.reduce(0, +) / Double(validationJaccard.count)
        self.seconds = seconds
        self.learningRate = learningRate
    }

    /// The tutorial's per-epoch line, with the epoch's learning rate appended:
    /// `EPOCH 3: Avg epoch training cost train 0.160667, cost val 0.265909, acc val 0.888796,
    /// jacc val class 0 0.636058, jacc val class 1 0.861970, jacc val 0.749014 took 4.379772 s, lr 0.001`.
    public var tutorialLine: String {
        var s = String(format: "EPOCH %d: Avg epoch training cost train %.6f, cost val %.6f, acc val %.6f",
                       epoch, trainCost, validationCost, validationAccuracy)
        for (c, j) in validationJaccard.enumerated() { s += String(format: ", jacc val class %d %.6f", c, j) }
        s += String(format: ", jacc val %.6f took %.6f s, lr %.6g", meanValidationJaccard, seconds, learningRate)
        return s
    }

    /// The header of `metrics.csv` for `classes` classes.
    public static func csvHeader(classes: Int) -> String {
        (["epoch", "train_cost", "val_cost", "val_accuracy"] + (0..<classes).map { "val_jaccard_\($0)" }
            + ["val_jaccard_mean", "seconds", "learning_rate"]).joined(separator: ",")
    }

    /// One `metrics.csv` row.
    public var csvRow: String {
        ([String(epoch), fmt(trainCost), fmt(validationCost), fmt(validationAccuracy)] + validationJaccard.map(fmt)
            + [fmt(meanValidationJaccard), fmt(seconds), String(format: "%g", learningRate)]).joined(separator: ",")
    }

    /// Parses a `metrics.csv` row written by `csvRow`; nil when malformed.
    public init?(csvRow: String, classes: Int) {
        let f = csvRow.split(separator: ",").map(String.init)
        guard f.count == 7 + classes, let e = Int(f[0]), let tc = Double(f[1]), let vc = Double(f[2]),
              let va = Double(f[3]) else { return nil }
        let jac = f[4..<(4 + classes)].compactMap(Double.init)
        guard jac.count == classes, let s = Double(f[5 + classes]), let lr = Double(f[6 + classes]) else { return nil }
        self.init(epoch: e, trainCost: tc, validationCost: vc, validationAccuracy: va, validationJaccard: jac,
                  seconds: s, learningRate: lr)
    }
}

private func fmt(_ x: Double) -> String { String(format: "%.6f", x) }

/// An SVG line chart of the training curves: train and validation cost (left axis) and mean
/// validation Jaccard (right axis, 0-1) per epoch. Self-contained, no dependencies.
public func trainingCurveSVG(_ records: [EpochRecord], title: String = "U-Net training") -> String {
    let width = 720.0, height = 400.0, left = 60.0, right = 60.0, top = 40.0, bottom = 50.0
    let plotW = width - left - right, plotH = height - top - bottom
    let epochs = records.map { Double($0.epoch) }
    let minE = epochs.min() ?? 0, maxE = max(epochs.max() ?? 1, minE + 1)
    let costs = records.flatMap { [$0.trainCost, $0.validationCost] }.filter { $0.isFinite }
    let maxCost = max(costs.max() ?? 1, 1e-6) * 1.05
    func x(_ e: Double) -> Double { left + (e - minE) / (maxE - minE) * plotW }
    func yCost(_ c: Double) -> Double { top + plotH - min(max(c, 0), maxCost) / maxCost * plotH }
    func yJac(_ j: Double) -> Double { top + plotH - min(max(j, 0), 1) * plotH }
    func path(_ points: [(Double, Double)], _ color: String, dashed: Bool = false) -> String {
        guard !points.isEmpty else { return "" }
        let d = points.enumerated().map { i, p in String(format: "%@%.1f,%.1f", i == 0 ? "M" : " L", p.0, p.1) }.joined()
        let dots = points.map { String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"/>", $0.0, $0.1, color) }.joined()
        return "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"6 4\"" : "")/>\(dots)\n"
    }
    var svg = String(format: "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", width, height)
    svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    svg += "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escapeXML(title))</text>\n"
    svg += String(format: "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#888\"/>\n", left, top, plotW, plotH)
    for i in 0...4 {
        let f = Double(i) / 4
        let yy = top + plotH - f * plotH
        svg += String(format: "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", left, left + plotW, yy, yy)
        svg += String(format: "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>", left - 6, yy + 4, f * maxCost)
        svg += String(format: "<text x=\"%.0f\" y=\"%.1f\">%.2f</text>\n", left + plotW + 6, yy + 4, f)
    }
    let ticks = min(10, Int(maxE - minE))
    for i in 0...max(ticks, 1) {
        let e = minE + (maxE - minE) * Double(i) / Double(max(ticks, 1))
        svg += String(format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>", x(e), top + plotH + 18, e)
    }
    svg += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">epoch</text>\n", left + plotW / 2, height - 10)
    svg += path(records.map { (x(Double($0.epoch)), yCost($0.trainCost)) }, "#1f77b4")
    svg += path(records.map { (x(Double($0.epoch)), yCost($0.validationCost)) }, "#ff7f0e")
    svg += path(records.map { (x(Double($0.epoch)), yJac($0.meanValidationJaccard)) }, "#2ca02c", dashed: true)
    let legend = [("#1f77b4", "cost train (left)"), ("#ff7f0e", "cost val (left)"), ("#2ca02c", "mean jaccard val (right)")]
    for (i, (color, label)) in legend.enumerated() {
        let lx = left + 10 + Double(i) * 200
        svg += String(format: "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%@\"/><text x=\"%.0f\" y=\"%.0f\">%@</text>\n",
                      lx, top + 6, color, lx + 16, top + 16, label)
    }
    svg += "</svg>\n"
    return svg
}

private func escapeXML(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}
