#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The ISBI 2012 challenge's scores of one slice at one threshold (see docs ISBI_METRICS.md).
/// All are in [0, 1]; higher is better; 1 is perfect.
public struct ISBIScores: Sendable, Equatable {
    /// Foreground-restricted Rand score after thinning: 2 S_AB / (S_A + S_B).
    public var vRand: Double
    /// Rand split score (recall): S_AB / S_A. Drops when the proposal splits a ground-truth cell.
    public var vRandSplit: Double
    /// Rand merge score (precision): S_AB / S_B. Drops when the proposal merges ground-truth cells.
    public var vRandMerge: Double
    /// Foreground-restricted information-theoretic score after thinning: 2 P R / (P + R).
    public var vInfo: Double
    /// Information split score R = I / H(B) (recall). Drops when the proposal splits a cell.
    public var vInfoSplit: Double
    /// Information merge score P = I / H(A) (precision). Drops when the proposal merges cells.
    public var vInfoMerge: Double

    /// Creates a score record.
    public init(vRand: Double, vRandSplit: Double, vRandMerge: Double,
                vInfo: Double, vInfoSplit: Double, vInfoMerge: Double) {
        self.vRand = vRand
        self.vRandSplit = vRandSplit
        self.vRandMerge = vRandMerge
        self.vInfo = vInfo
        self.vInfoSplit = vInfoSplit
        self.vInfoMerge = vInfoMerge
    }

    /// Every score 1 (a perfect proposal).
    public static let perfect = ISBIScores(vRand: 1, vRandSplit: 1, vRandMerge: 1, vInfo: 1, vInfoSplit: 1, vInfoMerge: 1)

    /// The field-by-field mean of `scores` (`perfect` for an empty list).
    public static func mean(_ scores: [ISBIScores]) -> ISBIScores {
        guard !scores.isEmpty else { return .perfect }
        let k = Double(scores.count)
        return ISBIScores(vRand: scores.reduce(0) { $0 + $1.vRand } / k,
                          vRandSplit: scores.reduce(0) { $0 + $1.vRandSplit } / k,
                          vRandMerge: scores.reduce(0) { $0 + $1.vRandMerge } / k,
                          vInfo: scores.reduce(0) { $0 + $1.vInfo } / k,
                          vInfoSplit: scores.reduce(0) { $0 + $1.vInfoSplit } / k,
                          vInfoMerge: scores.reduce(0) { $0 + $1.vInfoMerge } / k)
    }
}

/// The challenge's scores of a whole stack: per threshold, the scores averaged over the slices;
/// and the maxima over thresholds of the mean V_rand and of the mean V_info (each maximised on
/// its own, so the two may come from different thresholds, as the challenge reports them).
public struct ISBIStackScores: Sendable, Equatable {
    /// The thresholds tried, in order.
    public var thresholds: [Float]
    /// `meanScores[k]`: the per-slice scores at `thresholds[k]`, averaged over the slices.
    public var meanScores: [ISBIScores]
    /// Max over thresholds of the mean V_rand: the reported V_rand.
    public var vRand: Double
    /// The threshold where `vRand` was reached (the first one on ties).
    public var vRandThreshold: Float
    /// Max over thresholds of the mean V_info: the reported V_info.
    public var vInfo: Double
    /// The threshold where `vInfo` was reached (the first one on ties).
    public var vInfoThreshold: Float
}

/// The ISBI 2012 challenge's foreground-restricted Rand and information scores after border
/// thinning (Arganda-Carreras et al., Front. Neuroanat. 9:142, 2015), exactly as
/// docs/ISBI_METRICS.md defines them.
///
/// **Ground truth** (`Segmentation(cellsOf:)`): the 4-connected components of the cell pixels
/// (class != 0) are the segments A; membrane is label 0.
///
/// **Proposal** (`proposal(cellProbability:threshold:)`), from a cell-probability map p (1 = cell):
/// 1. Seeds: pixels with `p > t` are cell; their 4-connected components are the seed regions
///    1...K (raster order of first pixel). All other pixels (`p <= t`) are membrane.
/// 2. Thinning by a seeded, 4-connected watershed with dams (Meyer's flooding): the elevation of a
///    membrane pixel is its membrane probability 1 - p, so membrane pixels are flooded in order of
///    decreasing cell probability. A priority queue is keyed by (p descending, then insertion
///    order: first in, first out among equal p). Initially every membrane pixel with a 4-neighbour
///    in a seed region is queued, in raster order. Popping a pixel: if its labelled 4-neighbours
///    (region pixels, not dams) all carry one region label, it joins that region and its membrane
///    4-neighbours not yet queued are queued; if they carry two or more different labels it
///    becomes a dam (boundary) pixel and queues nothing. A pixel is queued at most once.
/// 3. Membrane pixels never reached (enclosed by dams, or every pixel when there are no seeds)
///    and the dams form the boundary: label 0 of segments B. Membrane that does not separate two
///    regions is absorbed by its region, so boundaries are one pixel wide (in 4-connectivity,
///    where two regions meet).
/// Values of p are clamped to [0, 1] (NaN counts as 0) before ordering.
///
/// **Scores** (`scores(groundTruth:proposal:)`): only pixels with A != 0 count (n of them). From
/// the sparse contingency table (a dictionary keyed by the pair (i, j), i, j >= 1) and
/// p0 = (ground-truth cell pixels on proposal boundaries) / n, each such pixel its own singleton:
/// - S_AB = sum p_ij^2 + p0/n, S_A = sum a_i^2, S_B = sum_{j>=1} b_j^2 + p0/n;
///   split = S_AB/S_A, merge = S_AB/S_B, V_rand = 2 S_AB/(S_A + S_B).
/// - H(A) = -sum a_i log a_i, H(B) = -(sum b_j log b_j - p0 log n),
///   sum_AB = sum p_ij log p_ij - p0 log n, sum_B = sum b_j log b_j - p0 log n,
///   I = H(A) - (sum_B - sum_AB), P = I/H(A) (merge), R = I/H(B) (split), V_info = 2PR/(P+R);
///   if H(A) = 0 then P = 0, R = 1; else if H(B) = 0 then P = 1, R = 0; V_info = 0 if P + R = 0.
/// A slice without any ground-truth cell pixel (n = 0) scores `ISBIScores.perfect` (nothing to get
/// wrong).
///
/// **Stack** (`evaluate`): for each threshold t in 0.0, 0.1, ..., 1.0 the per-slice scores are
/// averaged over the slices; V_rand and V_info are each the maximum of their average over t.
///
/// Cost per slice and threshold: O(pixels) for labelling and the contingency table plus
/// O(m log m) for the watershed's heap over the m membrane pixels. Thresholds (and slices) run in
/// parallel through `Threads.parallelFor`.
public enum ISBIMetrics {
    /// The challenge's thresholds: 0.0, 0.1, ..., 1.0.
    public static let defaultThresholds: [Float] = (0...10).map { Float($0) / 10 }

    // MARK: Proposal

    /// The proposal segmentation of a cell-probability map at `threshold`: seeded watershed
    /// thinning of the membrane, label 0 = one-pixel boundaries (see the type's documentation).
    public static func proposal(cellProbability: ImagePlane, threshold: Float) -> Segmentation {
        let w = cellProbability.width, h = cellProbability.height, n = w * h
        var labels = [Int32](repeating: 0, count: n)
        var regions: Int32 = 0
        cellProbability.pixels.withUnsafeBufferPointer { p in
            labels.withUnsafeMutableBufferPointer { l in
                regions = labelComponents4(width: w, height: h, isForeground: { p[$0] > threshold }, labels: l)
                if regions > 0 { floodMembrane(probability: p, labels: l, width: w, height: h) }
                // Dams (-1) and unreached membrane (0) are the boundary.
                for i in 0..<n where l[i] < 0 { l[i] = 0 }
            }
        }
        return Segmentation(width: w, height: h, labels: labels, segmentCount: Int(regions))
    }

    /// Watershed flooding of the unlabelled (0) pixels from the labelled regions; dams get -1.
    private static func floodMembrane(probability p: UnsafeBufferPointer<Float>,
                                      labels: UnsafeMutableBufferPointer<Int32>, width w: Int, height h: Int) {
        let n = w * h
        let l = labels.baseAddress!
        // State in `labels`: > 0 region, 0 membrane not yet queued, -2 queued, -1 dam.
        let queuedMark: Int32 = -2
        let tickets = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        // Binary min-heap of keys (level << 32 | ticket); each pixel is queued at most once.
        let heap = UnsafeMutablePointer<UInt64>.allocate(capacity: n)
        defer { tickets.deallocate(); heap.deallocate() }
        var count = 0
        var ticket = 0

        @inline(__always) func key(_ i: Int, _ ticket: Int) -> UInt64 {
            var v = p[i]
            v = v > 0 ? min(v, 1) : 0   // clamps; NaN -> 0
            return (UInt64(UInt32.max - v.bitPattern) << 32) | UInt64(ticket)  // larger p -> smaller key
        }
        @inline(__always) func siftUp(_ heap: UnsafeMutablePointer<UInt64>, _ start: Int, _ k: UInt64) {
            var i = start
            while i > 0 {
                let parent = (i - 1) >> 1
                let pk = heap[parent]
                if pk <= k { break }
                heap[i] = pk
                i = parent
            }
            heap[i] = k
        }

        for i in 0..<n where l[i] == 0 {
            let x = i % w
            if (x > 0 && l[i - 1] > 0) || (x + 1 < w && l[i + 1] > 0)
                || (i >= w && l[i - w] > 0) || (i + w < n && l[i + w] > 0) {
                tickets[ticket] = Int32(i)
                siftUp(heap, count, key(i, ticket))
                count += 1
                ticket += 1
            }
        }
        for t in 0..<ticket { l[Int(tickets[t])] = queuedMark }
        while count > 0 {
            // Pop the minimum.
            let top = heap[0]
            count -= 1
            if count > 0 {
                let last = heap[count]
                var i = 0
                while true {
                    var child = 2 * i + 1
                    if child >= count { break }
                    if child + 1 < count && heap[child + 1] < heap[child] { child += 1 }
                    let ck = heap[child]
                    if last <= ck { break }
                    heap[i] = ck
                    i = child
                }
                heap[i] = last
            }
            let i = Int(tickets[Int(top & 0xFFFF_FFFF)])
            let x = i % w
            var label: Int32 = 0
            var dam = false
            let hasLeft = x > 0, hasRight = x + 1 < w, hasUp = i >= w, hasDown = i + w < n
            @inline(__always) func look(_ j: Int) {
                let lj = l[j]
                if lj > 0 {
                    if label == 0 { label = lj } else if lj != label { dam = true }
                }
            }
            if hasLeft { look(i - 1) }
            if hasRight { look(i + 1) }
            if hasUp { look(i - w) }
            if hasDown { look(i + w) }
            if dam || label == 0 {
                l[i] = -1
                continue
            }
            l[i] = label
            @inline(__always) func enqueue(_ j: Int) {
                if l[j] == 0 {
                    l[j] = queuedMark
                    tickets[ticket] = Int32(j)
                    siftUp(heap, count, key(j, ticket))
                    count += 1
                    ticket += 1
                }
            }
            if hasLeft { enqueue(i - 1) }
            if hasRight { enqueue(i + 1) }
            if hasUp { enqueue(i - w) }
            if hasDown { enqueue(i + w) }
        }
        _ = h
    }

    // MARK: Scores

    /// V_rand and V_info (with split and merge parts) of `proposal` against `groundTruth`
    /// (label 0 = membrane / boundary in both), foreground-restricted to `groundTruth != 0`.
    public static func scores(groundTruth: Segmentation, proposal: Segmentation) -> ISBIScores {
        precondition(groundTruth.width == proposal.width && groundTruth.height == proposal.height,
                     "ISBIMetrics: ground truth \(groundTruth.width)x\(groundTruth.height), proposal \(proposal.width)x\(proposal.height)")
        // Sparse contingency: counts of (i, j), i, j >= 1, keyed by i << 32 | j.
        var table = [UInt64: Int]()
        var aCounts = [Int](repeating: 0, count: groundTruth.segmentCount + 1)
        var bCounts = [Int](repeating: 0, count: proposal.segmentCount + 1)
        var foreground = 0
        var onBoundary = 0
        groundTruth.labels.withUnsafeBufferPointer { a in
            proposal.labels.withUnsafeBufferPointer { b in
                var runKey: UInt64 = 0
                var runLength = 0
                for k in 0..<a.count {
                    let i = a[k]
                    if i == 0 { continue }
                    foreground += 1
                    aCounts[Int(i)] += 1
                    let j = b[k]
                    if j == 0 { onBoundary += 1; continue }
                    bCounts[Int(j)] += 1
                    let key = (UInt64(UInt32(i)) << 32) | UInt64(UInt32(j))
                    if key == runKey { runLength += 1; continue }
                    if runLength > 0 { table[runKey, default: 0] += runLength }
                    runKey = key
                    runLength = 1
                }
                if runLength > 0 { table[runKey, default: 0] += runLength }
            }
        }
        guard foreground > 0 else { return .perfect }
        let n = Double(foreground)
        let p0 = Double(onBoundary) / n
        let logN = log(n)

        var sumPij2 = 0.0, sumPijLog = 0.0
        for (_, c) in table {
            let pij = Double(c) / n
            sumPij2 += pij * pij
            sumPijLog += pij * log(pij)
        }
        var sA = 0.0, hA = 0.0
        for c in aCounts.dropFirst() where c > 0 {
            let ai = Double(c) / n
            sA += ai * ai
            hA -= ai * log(ai)
        }
        var sumB2 = 0.0, sumBLog = 0.0
        for c in bCounts.dropFirst() where c > 0 {
            let bj = Double(c) / n
            sumB2 += bj * bj
            sumBLog += bj * log(bj)
        }

        // Rand.
        let sAB = sumPij2 + p0 / n
        let sB = sumB2 + p0 / n
        let randSplit = sAB / sA
        let randMerge = sAB / sB
        let vRand = 2 * sAB / (sA + sB)

        // Information.
        let hB = -(sumBLog - p0 * logN)
        let sumAB = sumPijLog - p0 * logN
        let sumB = sumBLog - p0 * logN
        let information = hA - (sumB - sumAB)
        let precision: Double, recall: Double
        if hA == 0 {
            precision = 0; recall = 1
        } else if hB == 0 {
            precision = 1; recall = 0
        } else {
            precision = information / hA
            recall = information / hB
        }
        let vInfo = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
        return ISBIScores(vRand: vRand, vRandSplit: randSplit, vRandMerge: randMerge,
                          vInfo: vInfo, vInfoSplit: recall, vInfoMerge: precision)
    }

    /// The scores of one slice's cell-probability map against its labels at one threshold.
    public static func scores(cellProbability: ImagePlane, labels: LabelPlane, threshold: Float) -> ISBIScores {
        scores(groundTruth: Segmentation(cellsOf: labels), proposal: proposal(cellProbability: cellProbability, threshold: threshold))
    }

    /// The scores of one slice at every threshold (in the order given), thresholds in parallel.
    public static func scores(cellProbability: ImagePlane, labels: LabelPlane,
                              thresholds: [Float] = defaultThresholds) -> [ISBIScores] {
        checkSizes(cellProbability, labels)
        let truth = Segmentation(cellsOf: labels)
        var results = [ISBIScores](repeating: .perfect, count: thresholds.count)
        results.withUnsafeMutableBufferPointer { r in
            Threads.parallelFor(thresholds.count) { k in
                r[k] = scores(groundTruth: truth, proposal: proposal(cellProbability: cellProbability, threshold: thresholds[k]))
            }
        }
        return results
    }

    /// The challenge's stack scores: per threshold the per-slice scores averaged over the slices,
    /// then the maximum over thresholds of the mean V_rand and of the mean V_info.
    /// `cellProbabilities[s]` is slice s's cell-probability map (1 = cell), `labels[s]` its labels.
    public static func evaluate(cellProbabilities: [ImagePlane], labels: [LabelPlane],
                                thresholds: [Float] = defaultThresholds) -> ISBIStackScores {
        precondition(cellProbabilities.count == labels.count,
                     "ISBIMetrics: \(cellProbabilities.count) probability maps, \(labels.count) label planes")
        precondition(!thresholds.isEmpty, "ISBIMetrics: no thresholds")
        for s in 0..<labels.count { checkSizes(cellProbabilities[s], labels[s]) }
        let slices = labels.count, t = thresholds.count
        var truths = [Segmentation?](repeating: nil, count: slices)
        truths.withUnsafeMutableBufferPointer { tr in
            Threads.parallelFor(slices) { s in tr[s] = Segmentation(cellsOf: labels[s]) }
        }
        var perSlice = [ISBIScores](repeating: .perfect, count: slices * t)
        perSlice.withUnsafeMutableBufferPointer { r in
            Threads.parallelFor(slices * t) { job in
                let s = job / t, k = job % t
                r[job] = scores(groundTruth: truths[s]!,
                                proposal: proposal(cellProbability: cellProbabilities[s], threshold: thresholds[k]))
            }
        }
        var means = [ISBIScores]()
        for k in 0..<t {
            means.append(ISBIScores.mean((0..<slices).map { perSlice[$0 * t + k] }))
        }
        var bestRand = 0, bestInfo = 0
        for k in 1..<t {
            if means[k].vRand > means[bestRand].vRand { bestRand = k }
            if means[k].vInfo > means[bestInfo].vInfo { bestInfo = k }
        }
        return ISBIStackScores(thresholds: thresholds, meanScores: means,
                               vRand: means[bestRand].vRand, vRandThreshold: thresholds[bestRand],
                               vInfo: means[bestInfo].vInfo, vInfoThreshold: thresholds[bestInfo])
    }

    private static func checkSizes(_ p: ImagePlane, _ l: LabelPlane) {
        precondition(p.width == l.width && p.height == l.height,
                     "ISBIMetrics: probability map \(p.width)x\(p.height), labels \(l.width)x\(l.height)")
    }
}
