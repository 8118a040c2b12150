import Foundation
import XCTest
@testable import UNet

final class WeightMapTests: XCTestCase {
    func testClassWeightsHaveMeanOne() {
        // 25% cells.
        let labels = LabelPlane(width: 8, height: 4, classes: (0..<32).map { $0 % 4 == 0 ? 1 : 0 })
        let weights = WeightMaps.classWeights(labels: labels)
        XCTAssertEqual(weights[0], 32.0 / (2 * 24), accuracy: 1e-6)
        XCTAssertEqual(weights[1], 32.0 / (2 * 8), accuracy: 1e-6)
        let map = WeightMaps.classWeightMap(labels: labels)
        XCTAssertEqual(map.reduce(0, +) / Float(map.count), 1, accuracy: 1e-6)
        // Over a set of planes.
        let other = LabelPlane(width: 8, height: 4, classes: [UInt8](repeating: 1, count: 32))
        let counts = WeightMaps.classCounts([labels, other])
        XCTAssertEqual(counts, [24, 40])
        let setWeights = WeightMaps.classWeights(counts: counts)
        let mean = (Float(24) * setWeights[0] + Float(40) * setWeights[1]) / 64
        XCTAssertEqual(mean, 1, accuracy: 1e-6)
        // One class only: weight 1 for it, 0 for the absent one.
        XCTAssertEqual(WeightMaps.classWeights(labels: other), [0, 1])
    }

    /// Two 10 x 10 cells separated by a 2-pixel gap, in a 60 x 40 plane of membrane.
    func twoCells() -> LabelPlane {
        var l = LabelPlane(width: 60, height: 40, classes: [UInt8](repeating: 0, count: 2400))
        for y in 15..<25 {
            for x in 10..<20 { l[x, y] = 1 }
            for x in 22..<32 { l[x, y] = 1 }
        }
        return l
    }

    func testBorderWeightPeaksBetweenCloseCells() {
        let labels = twoCells()
        let unit: [Float] = [1, 1]
        let map = WeightMaps.borderWeightMap(labels: labels, classWeights: unit)
        // Gap pixel (20, 20): d1 = 1, d2 = 2.
        XCTAssertEqual(map[20 * 60 + 20], 1 + 10 * exp(-9 / 50), accuracy: 1e-5)
        XCTAssertEqual(map[20 * 60 + 21], 1 + 10 * exp(-9 / 50), accuracy: 1e-5)
        // Cell pixels carry w_c only.
        XCTAssertEqual(map[20 * 60 + 15], 1)
        // The gap is the maximum of the map.
        XCTAssertEqual(map.max()!, map[20 * 60 + 20], accuracy: 1e-6)
        // Far from both cells: ~w_c.
        XCTAssertEqual(map[2 * 60 + 55], 1, accuracy: 1e-4)
        // Next to the left cell only (left side): d1 = 1, d2 = 13 -> small.
        XCTAssertEqual(map[20 * 60 + 9], 1 + 10 * exp(-196 / 50), accuracy: 1e-5)
        XCTAssertLessThan(map[20 * 60 + 9], map[20 * 60 + 20])
        // Balanced class weights on top: mean of w_c is 1, the border term adds.
        let balanced = WeightMaps.borderWeightMap(labels: labels)
        let wc = WeightMaps.classWeights(labels: labels)
        XCTAssertEqual(balanced[2 * 60 + 55], wc[0], accuracy: 1e-4)
        XCTAssertEqual(balanced[20 * 60 + 15], wc[1])
        // A single cell: no border term.
        var one = labels
        for y in 15..<25 { for x in 22..<32 { one[x, y] = 0 } }
        XCTAssertTrue(WeightMaps.borderTerm(labels: one).allSatisfy { $0 == 0 })
    }

    func testBorderTermMatchesBruteForce() {
        var rng = SeededGenerator(seed: 4)
        let w = 37, h = 29
        // Random rectangles of cell on membrane.
        var labels = LabelPlane(width: w, height: h, classes: [UInt8](repeating: 0, count: w * h))
        for _ in 0..<9 {
            let x0 = rng.nextInt(in: 0..<w), y0 = rng.nextInt(in: 0..<h)
            let x1 = min(w, x0 + 1 + rng.nextInt(in: 0..<8)), y1 = min(h, y0 + 1 + rng.nextInt(in: 0..<8))
            for y in y0..<y1 { for x in x0..<x1 { labels[x, y] = 1 } }
        }
        let cells = Segmentation(cellsOf: labels)
        XCTAssertGreaterThanOrEqual(cells.segmentCount, 2)
        let fast = WeightMaps.borderTerm(labels: labels, w0: 10, sigma: 5)
        for y in 0..<h {
            for x in 0..<w {
                let i = y * w + x
                if labels.classes[i] != 0 { XCTAssertEqual(fast[i], 0); continue }
                var nearest = [Double](repeating: .infinity, count: cells.segmentCount + 1)
                for yy in 0..<h {
                    for xx in 0..<w {
                        let c = Int(cells.labels[yy * w + xx])
                        if c == 0 { continue }
                        let d = Double((xx - x) * (xx - x) + (yy - y) * (yy - y)).squareRoot()
                        nearest[c] = min(nearest[c], d)
                    }
                }
                let sorted = nearest.dropFirst().sorted()
                let expected = 10 * exp(-(sorted[0] + sorted[1]) * (sorted[0] + sorted[1]) / 50)
                XCTAssertEqual(Double(fast[i]), expected, accuracy: 1e-4, "pixel (\(x), \(y))")
            }
        }
    }

    func testSpeedOn512Labels() {
        #if DEBUG
        let size = 128   // debug builds only check correctness
        #else
        let size = 512
        #endif
        let (_, labels) = RandInformationTests.voronoiSlice(size: size, seed: 8)
        let start = Date()
        let map = WeightMaps.borderWeightMap(labels: labels)
        let ms = Date().timeIntervalSince(start) * 1000
        print("border weight map \(size)^2 (\(Segmentation(cellsOf: labels).segmentCount) cells): \(ms) ms, max \(map.max()!)")
        #if !DEBUG
        XCTAssertLessThan(ms, 500)   // release only
        #endif
    }
}
