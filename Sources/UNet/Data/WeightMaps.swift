#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-pixel loss weights: class balancing, and the U-Net paper's border weight map
/// (Ronneberger et al. 2015, eq. 2):
///
///     w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))
///
/// with w_c the class-balancing weight of the pixel's class, d1 and d2 the Euclidean distances
/// to the nearest and the second-nearest cell (4-connected component of class 1), w0 = 10 and
/// sigma = 5 px by default. The border term is added on membrane (class 0) pixels only, as in the
/// paper (it separates touching cells); cell pixels get w_c.
///
/// Maps are `[Float]` of `width * height`, row-major, like the label plane. Compute them on the
/// label tile the network sees (after augmentation), since the border term depends on geometry.
public enum WeightMaps {
    /// Number of pixels of each class 0..<`classCount` in `labels` (classes >= `classCount` are
    /// not counted).
    public static func classCounts(_ labels: LabelPlane, classCount: Int = 2) -> [Int] {
        classCounts([labels], classCount: classCount)
    }

    /// Number of pixels of each class over several label planes (a whole training set).
    public static func classCounts(_ planes: [LabelPlane], classCount: Int = 2) -> [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for plane in planes {
            for c in plane.classes where Int(c) < classCount { counts[Int(c)] += 1 }
        }
        return counts
    }

    /// Inverse-class-frequency weights: w_c proportional to 1 / n_c, normalised so that the mean
    /// weight over the counted pixels is 1, that is w_c = N / (K n_c) with N pixels and K classes
    /// present. A class with no pixels gets weight 0 (it never occurs in those pixels).
    public static func classWeights(counts: [Int]) -> [Float] {
        let total = counts.reduce(0, +)
        let present = counts.filter { $0 > 0 }.count
        guard total > 0 else { return [Float](repeating: 1, count: counts.count) }
        return counts.map { $0 > 0 ? Float(Double(total) / (Double(present) * Double($0))) : 0 }
    }

    /// Inverse-class-frequency weights of one label plane (mean per-pixel weight 1 on it).
    public static func classWeights(labels: LabelPlane, classCount: Int = 2) -> [Float] {
        classWeights(counts: classCounts(labels, classCount: classCount))
    }

    /// The class-weight map: each pixel gets the weight of its class. With `classWeights` nil the
    /// weights are balanced on this plane (so the map's mean is 1); pass weights computed over the
    /// whole training set (`classWeights(counts:)`) to keep them fixed across tiles.
    public static func classWeightMap(labels: LabelPlane, classWeights: [Float]? = nil) -> [Float] {
        let weights = classWeights ?? Self.classWeights(labels: labels, classCount: max(2, Int(labels.classes.max() ?? 0) + 1))
        return labels.classes.map { Int($0) < weights.count ? weights[Int($0)] : 0 }
    }

    /// The U-Net paper's weight map w = w_c + border term (see the type's documentation).
    ///
    /// - Parameters:
    ///   - classWeights: w_c per class; nil balances the classes on this plane (mean 1);
    ///     pass `[1, 1]` for the border term on top of unit weights.
    ///   - w0: border weight (10 in the paper).
    ///   - sigma: border width in pixels (about 5 in the paper).
    public static func borderWeightMap(labels: LabelPlane, classWeights: [Float]? = nil,
                                       w0: Float = 10, sigma: Float = 5) -> [Float] {
        var map = classWeightMap(labels: labels, classWeights: classWeights)
        let term = borderTerm(labels: labels, w0: w0, sigma: sigma)
        for i in map.indices { map[i] += term[i] }
        return map
    }

    /// The border term alone: w0 exp(-(d1 + d2)^2 / (2 sigma^2)) on membrane pixels, 0 on cell
    /// pixels and wherever fewer than two cells exist.
    ///
    /// Distances are exact Euclidean distances between pixel centres, computed per cell by a
    /// separable squared distance transform (Felzenszwalb and Huttenlocher) restricted to the
    /// cell's bounding box grown by a margin m = ceil(sigma sqrt(2 ln(w0 / 1e-4))) (24 px for the
    /// defaults): only pixels with d1, d2 <= m can have a term above 1e-4, and for those both
    /// distances are exact; elsewhere the term is set to 0 (error below 1e-4).
    /// Cost O(sum over cells of (bbox width + 2m) (bbox height + 2m)), about a few times the
    /// pixel count for EM-sized cells; memory O(pixels).
    public static func borderTerm(labels: LabelPlane, w0: Float = 10, sigma: Float = 5) -> [Float] {
        let w = labels.width, h = labels.height, n = w * h
        var term = [Float](repeating: 0, count: n)
        guard w0 > 0, sigma > 0, n > 0 else { return term }
        let cells = Segmentation(cellsOf: labels)
        let k = cells.segmentCount
        guard k >= 2 else { return term }
        let margin = Int((Double(sigma) * (2 * log(Double(w0) / 1e-4)).squareRoot()).rounded(.up))
        let marginSquared = Float(margin * margin)

        // Bounding boxes.
        var minX = [Int](repeating: Int.max, count: k + 1), maxX = [Int](repeating: -1, count: k + 1)
        var minY = [Int](repeating: Int.max, count: k + 1), maxY = [Int](repeating: -1, count: k + 1)
        for y in 0..<h {
            for x in 0..<w {
                let c = Int(cells.labels[y * w + x])
                if c == 0 { continue }
                if x < minX[c] { minX[c] = x }
                if x > maxX[c] { maxX[c] = x }
                if y < minY[c] { minY[c] = y }
                if y > maxY[c] { maxY[c] = y }
            }
        }

        // Squared distances to the nearest and second-nearest cell (infinity = beyond the margin).
        var d1 = [Float](repeating: .infinity, count: n)
        var d2 = [Float](repeating: .infinity, count: n)
        let longest = max(w, h)
        var largestWindow = 0
        for c in 1...k {
            let ww = min(w - 1, maxX[c] + margin) - max(0, minX[c] - margin) + 1
            let wh = min(h - 1, maxY[c] + margin) - max(0, minY[c] - margin) + 1
            largestWindow = max(largestWindow, ww * wh)
        }
        let window = UnsafeMutablePointer<Float>.allocate(capacity: largestWindow)
        let f = UnsafeMutablePointer<Float>.allocate(capacity: longest + 1)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: longest + 1)
        let v = UnsafeMutablePointer<Int>.allocate(capacity: longest + 1)
        let z = UnsafeMutablePointer<Float>.allocate(capacity: longest + 2)
        defer { window.deallocate(); f.deallocate(); out.deallocate(); v.deallocate(); z.deallocate() }
        let infinity = Float.greatestFiniteMagnitude

        cells.labels.withUnsafeBufferPointer { cellLabels in
            d1.withUnsafeMutableBufferPointer { d1 in
                d2.withUnsafeMutableBufferPointer { d2 in
                    for c in 1...k {
                        let x0 = max(0, minX[c] - margin), x1 = min(w - 1, maxX[c] + margin)
                        let y0 = max(0, minY[c] - margin), y1 = min(h - 1, maxY[c] + margin)
                        let ww = x1 - x0 + 1, wh = y1 - y0 + 1
                        let label = Int32(c)
                        // 0 on the cell, "infinity" elsewhere.
                        for y in 0..<wh {
                            let row = (y0 + y) * w + x0
                            for x in 0..<ww { window[y * ww + x] = cellLabels[row + x] == label ? 0 : infinity }
                        }
                        // Columns, then rows.
                        for x in 0..<ww {
                            for y in 0..<wh { f[y] = window[y * ww + x] }
                            squaredDistance1D(f, out, v, z, wh)
                            for y in 0..<wh { window[y * ww + x] = out[y] }
                        }
                        for y in 0..<wh {
                            squaredDistance1D(window + y * ww, out, v, z, ww)
                            let row = (y0 + y) * w + x0
                            for x in 0..<ww {
                                let d = out[x]
                                if d > marginSquared { continue }
                                let i = row + x
                                if d < d1[i] { d2[i] = d1[i]; d1[i] = d } else if d < d2[i] { d2[i] = d }
                            }
                        }
                    }
                }
            }
        }

        let scale = 1 / (2 * sigma * sigma)
        for i in 0..<n where labels.classes[i] == 0 && d2[i] <= marginSquared {
            let s = d1[i].squareRoot() + d2[i].squareRoot()
            term[i] = w0 * exp(-s * s * scale)
        }
        return term
    }

    /// Felzenszwalb-Huttenlocher 1-D squared distance transform (lower envelope of parabolas)
    /// of `f[0..<n]` into `d[0..<n]`. Values >= Float.greatestFiniteMagnitude mean "no source".
    private static func squaredDistance1D(_ f: UnsafeMutablePointer<Float>, _ d: UnsafeMutablePointer<Float>,
                                          _ v: UnsafeMutablePointer<Int>, _ z: UnsafeMutablePointer<Float>, _ n: Int) {
        let big = Float.greatestFiniteMagnitude
        // Skip leading positions without a source.
        var first = -1
        for q in 0..<n where f[q] < big { first = q; break }
        if first < 0 {
            for q in 0..<n { d[q] = big }
            return
        }
        var k = 0
        v[0] = first
        z[0] = -.infinity
        z[1] = .infinity
        if first + 1 < n {
            for q in (first + 1)..<n where f[q] < big {
                let fq = f[q] + Float(q * q)
                var s: Float
                repeat {
                    let p = v[k]
                    s = (fq - (f[p] + Float(p * p))) / Float(2 * (q - p))
                    if s <= z[k] { k -= 1 } else { break }
                } while k >= 0
                k += 1
                v[k] = q
                z[k] = s
                z[k + 1] = .infinity
            }
        }
        k = 0
        for q in 0..<n {
            while z[k + 1] < Float(q) { k += 1 }
            let dq = q - v[k]
            d[q] = Float(dq * dq) + f[v[k]]
        }
    }
}
