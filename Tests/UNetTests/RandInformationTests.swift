import Foundation
import XCTest
@testable import UNet

final class RandInformationTests: XCTestCase {
    /// Builds a label plane from rows of "." (membrane) and "#" (cell).
    func labels(_ rows: [String]) -> LabelPlane {
        let w = rows[0].count
        return LabelPlane(width: w, height: rows.count, classes: rows.joined().map { $0 == "#" ? 1 : 0 })
    }

    /// Builds a probability plane from rows of digits d (probability d/9).
    func probability(_ rows: [String]) -> ImagePlane {
        let w = rows[0].count
        return ImagePlane(width: w, height: rows.count, pixels: rows.joined().map { Float(String($0))! / 9 })
    }

    func testPerfectPredictionScoresOne() {
        let gt = labels(["###.###", "###.###", "###.###"])
        let p = ImagePlane(width: 7, height: 3, pixels: gt.classes.map { Float($0) })
        let s = ISBIMetrics.scores(cellProbability: p, labels: gt, threshold: 0.5)
        XCTAssertEqual(s.vRand, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vInfo, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vRandSplit, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vRandMerge, 1, accuracy: 1e-12)
        let stack = ISBIMetrics.evaluate(cellProbabilities: [p, p], labels: [gt, gt])
        XCTAssertEqual(stack.vRand, 1, accuracy: 1e-12)
        XCTAssertEqual(stack.vInfo, 1, accuracy: 1e-12)
        XCTAssertEqual(stack.vRandThreshold, 0.0)
        // At t = 1.0 nothing is cell: all membrane.
        XCTAssertLessThan(stack.meanScores.last!.vRand, 1)
    }

    func testTwoCellsMerged() {
        // Three cells of 4 pixels; the prediction fills the first membrane column: cells 1 and 2 merge.
        let gt = labels(["##.##.##", "##.##.##"])
        let p = probability(["99999099", "99999099"])
        let proposal = ISBIMetrics.proposal(cellProbability: p, threshold: 0.5)
        XCTAssertEqual(proposal.segmentCount, 2)
        XCTAssertEqual(proposal.labels, [1, 1, 1, 1, 1, 0, 2, 2, 1, 1, 1, 1, 1, 0, 2, 2])
        let s = ISBIMetrics.scores(cellProbability: p, labels: gt, threshold: 0.5)
        // n = 12, p11 = p21 = p32 = 1/3; b = (2/3, 1/3).
        // S_AB = 1/3, S_A = 1/3, S_B = 5/9: split 1, merge 3/5, V_rand 3/4.
        XCTAssertEqual(s.vRandSplit, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vRandMerge, 0.6, accuracy: 1e-12)
        XCTAssertEqual(s.vRand, 0.75, accuracy: 1e-12)
        // H(A) = log 3, H(B) = log 3 - (2/3) log 2 = I: R = 1, P = 1 - 2 log 2 / (3 log 3).
        let precision = 1 - 2 * log(2.0) / (3 * log(3.0))
        XCTAssertEqual(s.vInfoSplit, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vInfoMerge, precision, accuracy: 1e-12)
        XCTAssertEqual(s.vInfo, 2 * precision / (precision + 1), accuracy: 1e-12)
        XCTAssertLessThan(s.vInfo, 1)
    }

    func testOneCellSplit() {
        // Cell 1 (10 px) is cut by a predicted membrane column; cell 2 (4 px) is right.
        let gt = labels(["#####.##", "#####.##"])
        let p = probability(["99099099", "99099099"])
        let s = ISBIMetrics.scores(cellProbability: p, labels: gt, threshold: 0.5)
        // n = 14, p0 = 2/14 (the cut column), p11 = p12 = p23 = 4/14.
        // S_AB = 48/196 + 2/196 = 50/196, S_A = 116/196, S_B = 50/196.
        XCTAssertEqual(s.vRandSplit, 50.0 / 116.0, accuracy: 1e-12)
        XCTAssertEqual(s.vRandMerge, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vRand, 100.0 / 166.0, accuracy: 1e-12)
        // H(A) = -(5/7 log 5/7 + 2/7 log 2/7); H(B) = -(3 (2/7) log(2/7) - (1/7) log 14); I = H(A).
        let hA = -(5.0 / 7 * log(5.0 / 7) + 2.0 / 7 * log(2.0 / 7))
        let hB = -(3 * (2.0 / 7) * log(2.0 / 7) - (1.0 / 7) * log(14.0))
        XCTAssertEqual(s.vInfoMerge, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vInfoSplit, hA / hB, accuracy: 1e-12)
        XCTAssertEqual(s.vInfo, 2 * (hA / hB) / (1 + hA / hB), accuracy: 1e-12)
    }

    func testAllMembranePrediction() {
        let gt = labels(["###.###", "###.###", "###.###"])
        let p = ImagePlane(width: 7, height: 3, repeating: 0)
        let proposal = ISBIMetrics.proposal(cellProbability: p, threshold: 0.5)
        XCTAssertEqual(proposal.segmentCount, 0)
        XCTAssertTrue(proposal.labels.allSatisfy { $0 == 0 })
        let s = ISBIMetrics.scores(cellProbability: p, labels: gt, threshold: 0.5)
        // n = 18, every pixel a singleton: S_AB = S_B = 1/18, S_A = 1/2: V_rand = (2/18) / (1/2 + 1/18) = 0.2.
        XCTAssertEqual(s.vRand, 0.2, accuracy: 1e-12)
        XCTAssertEqual(s.vRandMerge, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vRandSplit, 1.0 / 9.0, accuracy: 1e-12)
        // I = H(A) = log 2, H(B) = log 18: P = 1, R = log 2 / log 18.
        let r = log(2.0) / log(18.0)
        XCTAssertEqual(s.vInfoSplit, r, accuracy: 1e-12)
        XCTAssertEqual(s.vInfoMerge, 1, accuracy: 1e-12)
        XCTAssertEqual(s.vInfo, 2 * r / (1 + r), accuracy: 1e-12)
    }

    func testWatershedThinsThickMembraneAtItsLowestCellProbability() {
        // A 5-wide membrane band between two cells; cell probability lowest (1/9) in column 5.
        let p = probability(["9944314499", "9944314499", "9944314499"])
        let seg = ISBIMetrics.proposal(cellProbability: p, threshold: 0.5)
        XCTAssertEqual(seg.segmentCount, 2)
        for y in 0..<3 {
            let row = Array(seg.labels[(y * 10)..<(y * 10 + 10)])
            XCTAssertEqual(row, [1, 1, 1, 1, 1, 0, 2, 2, 2, 2])
        }
        // A membrane island inside a cell and membrane on the image border are absorbed.
        let q = probability(["99999", "90099", "99999", "00000"])
        let single = ISBIMetrics.proposal(cellProbability: q, threshold: 0.5)
        XCTAssertEqual(single.segmentCount, 1)
        XCTAssertTrue(single.labels.allSatisfy { $0 == 1 })
    }

    func testPlateauIsSplitInTheMiddle() {
        // Equal probabilities in the band: first-in-first-out flooding meets in the middle.
        let p = probability(["9922222299"])
        let seg = ISBIMetrics.proposal(cellProbability: p, threshold: 0.5)
        XCTAssertEqual(seg.labels, [1, 1, 1, 1, 1, 0, 2, 2, 2, 2])
    }

    /// Straightforward dense implementation, directly from ISBI_METRICS.md's formulas.
    func denseScores(a: [Int], b: [Int], na: Int, nb: Int) -> (vRand: Double, vInfo: Double) {
        var counts = [[Double]](repeating: [Double](repeating: 0, count: nb + 1), count: na + 1)
        for k in a.indices where a[k] != 0 { counts[a[k]][b[k]] += 1 }
        let n = counts.joined().reduce(0, +)
        let p = counts.map { $0.map { $0 / n } }
        let ai = p.map { $0.reduce(0, +) }
        var bj = [Double](repeating: 0, count: nb + 1)
        for i in 1...na { for j in 1...nb { bj[j] += p[i][j] } }
        var p0 = 0.0
        for i in 1...na { p0 += p[i][0] }
        var sumP2 = 0.0, sumPLogP = 0.0
        for i in 1...na { for j in 1...nb where p[i][j] > 0 { sumP2 += p[i][j] * p[i][j]; sumPLogP += p[i][j] * log(p[i][j]) } }
        let sAB = sumP2 + p0 / n
        let sA = ai.dropFirst().map { $0 * $0 }.reduce(0, +)
        let sB = bj.dropFirst().map { $0 * $0 }.reduce(0, +) + p0 / n
        let vRand = 2 * sAB / (sA + sB)
        let hA = -ai.dropFirst().filter { $0 > 0 }.map { $0 * log($0) }.reduce(0, +)
        let sumBLogB = bj.dropFirst().filter { $0 > 0 }.map { $0 * log($0) }.reduce(0, +)
        let hB = -(sumBLogB - p0 * log(n))
        let sumAB = sumPLogP - p0 * log(n)
        let sumB = sumBLogB - p0 * log(n)
        let i = hA - (sumB - sumAB)
        let precision = i / hA, recall = i / hB
        return (vRand, 2 * precision * recall / (precision + recall))
    }

    func testSparseScoresMatchDenseReference() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<20 {
            let w = 9, h = 7
            // Random ground truth: random cells with membrane, labelled by 4-components.
            let gt = LabelPlane(width: w, height: h, classes: (0..<(w * h)).map { _ in rng.nextUnitFloat() < 0.7 ? 1 : 0 })
            let truth = Segmentation(cellsOf: gt)
            // Random proposal labels 0...4 (not necessarily connected: the formulas do not care).
            let nb = 4
            var b = (0..<(w * h)).map { _ in Int32(rng.nextInt(in: 0..<(nb + 1))) }
            b[0] = 1; b[1] = 2; b[2] = 3; b[3] = 4
            let proposal = Segmentation(width: w, height: h, labels: b, segmentCount: nb)
            guard truth.segmentCount >= 2 else { continue }
            let s = ISBIMetrics.scores(groundTruth: truth, proposal: proposal)
            let d = denseScores(a: truth.labels.map { Int($0) }, b: b.map { Int($0) }, na: truth.segmentCount, nb: nb)
            XCTAssertEqual(s.vRand, d.vRand, accuracy: 1e-12)
            XCTAssertEqual(s.vInfo, d.vInfo, accuracy: 1e-12)
        }
    }

    /// A Voronoi-like probability map: membrane where the two nearest of `cells` seeds are nearly
    /// equidistant, with noise.
    static func voronoiSlice(size: Int, seed: UInt64, cells: Int = 150) -> (ImagePlane, LabelPlane) {
        var rng = SeededGenerator(seed: seed)
        let centers = (0..<cells).map { _ in (Float(rng.nextInt(in: 0..<size)), Float(rng.nextInt(in: 0..<size))) }
        var prob = [Float](repeating: 0, count: size * size)
        var lab = [UInt8](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size {
                var d1 = Float.infinity, d2 = Float.infinity
                for (cx, cy) in centers {
                    let d = ((Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy)).squareRoot()
                    if d < d1 { d2 = d1; d1 = d } else if d < d2 { d2 = d }
                }
                let gap = d2 - d1
                lab[y * size + x] = gap > 2 ? 1 : 0
                prob[y * size + x] = min(1, max(0, gap / 6 + (rng.nextUnitFloat() - 0.5) * 0.3))
            }
        }
        return (ImagePlane(width: size, height: size, pixels: prob), LabelPlane(width: size, height: size, classes: lab))
    }

    /// A whole 512^2 slice of Voronoi cells at the 11 thresholds scores well on both measures, and
    /// the best thresholds are among those tried.
    func testVoronoiSliceAtElevenThresholds() {
        let (p, l) = Self.voronoiSlice(size: 512, seed: 3)
        let stack = ISBIMetrics.evaluate(cellProbabilities: [p], labels: [l])
        XCTAssertGreaterThan(stack.vRand, 0.5)
        XCTAssertGreaterThan(stack.vInfo, 0.5)
        XCTAssertTrue((0...1).contains(stack.vRandThreshold) && (0...1).contains(stack.vInfoThreshold))
    }
}
