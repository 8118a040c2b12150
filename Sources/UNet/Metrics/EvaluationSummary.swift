import Foundation

/// Mean and standard deviation of each score over several evaluations (the folds of a
/// cross-validation): what `unet evaluate --summary` prints.
///
/// ```swift
/// let summary = try EvaluationSummary(results: folds)        // at least 2 EvaluationResults
/// for row in summary.rows { print(row.name, row.mean, row.standardDeviation) }
/// ```
public struct EvaluationSummary: Sendable, Equatable {
    /// One score over the evaluations.
    public struct Row: Sendable, Equatable, Codable {
        /// The score's key in `unet evaluate --json` (`mean_jaccard`, `jaccard_0`, `v_rand`, ...).
        public var name: String
        /// The mean over the evaluations that have the score.
        public var mean: Double
        /// The sample standard deviation (n - 1 in the denominator).
        public var standardDeviation: Double
        /// How many evaluations have the score.
        public var count: Int

        enum CodingKeys: String, CodingKey {
            case name, mean, standardDeviation = "sd", count = "n"
        }
    }

    /// The scores in `unet evaluate`'s order: cost, accuracy, Jaccard per class and mean, Dice per
    /// class and mean, V_rand, V_info, V_rand's threshold. Scores no evaluation has are left out.
    public let rows: [Row]
    /// The number of evaluations.
    public let evaluations: Int

    /// Summarizes `results`. Throws `EvaluationSummaryError` for fewer than two results or results
    /// with different numbers of classes.
    public init(results: [EvaluationResult]) throws {
        guard results.count >= 2 else { throw EvaluationSummaryError.tooFew(results.count) }
        let classes = results[0].jaccard.count
        if let odd = results.firstIndex(where: { $0.jaccard.count != classes || $0.dice.count != classes }) {
            throw EvaluationSummaryError.classesDiffer(index: odd, expected: classes, found: results[odd].jaccard.count)
        }
        var columns: [(String, [Double])] = [("cost", results.map(\.cost)), ("accuracy", results.map(\.accuracy))]
        for c in 0..<classes { columns.append(("jaccard_\(c)", results.map { $0.jaccard[c] })) }
        columns.append(("mean_jaccard", results.map(\.meanJaccard)))
        for c in 0..<classes { columns.append(("dice_\(c)", results.map { $0.dice[c] })) }
        columns.append(("mean_dice", results.map(\.meanDice)))
        columns.append(("v_rand", results.compactMap(\.vRand)))
        columns.append(("v_info", results.compactMap(\.vInfo)))
        columns.append(("v_rand_threshold", results.compactMap { $0.vRandThreshold.map(Double.init) }))
        rows = columns.filter { !$0.1.isEmpty }.map { name, values in
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.count > 1
                ? values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1) : 0
            return Row(name: name, mean: mean, standardDeviation: variance.squareRoot(), count: values.count)
        }
        evaluations = results.count
    }

    /// The row named `name`, if present.
    public subscript(name: String) -> Row? { rows.first { $0.name == name } }
}

/// Evaluations that cannot be summarized.
public enum EvaluationSummaryError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Fewer than two evaluations: no standard deviation.
    case tooFew(Int)
    /// Evaluation `index` (0-based) has another number of classes than the first.
    case classesDiffer(index: Int, expected: Int, found: Int)

    /// One line saying what is wrong.
    public var description: String {
        switch self {
        case let .tooFew(n): return "\(n) evaluation(s): a mean and standard deviation need at least 2"
        case let .classesDiffer(index, expected, found):
            return "evaluation \(index + 1) has \(found) class(es), the first has \(expected)"
        }
    }
}
