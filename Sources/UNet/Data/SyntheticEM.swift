import Dispatch
import Foundation
import Tensor

/// A deterministic generator of EM-like slices with membrane labels: the embedded default dataset.
///
/// Each slice is a tiling of cells (Voronoi regions of jittered seeds, some seeds dropped so cell sizes
/// vary, the plane domain-warped so borders curve), separated by dark membranes whose width and contrast
/// vary from border to border and along each border. Cells get their own brightness, low- and
/// high-frequency texture and organelle-like blobs (dark mitochondria-like ellipses, bright vesicles)
/// that are *not* membrane, so a model must use shape and context, as on real EM. Gaussian noise and a
/// blur finish the image. Labels are 255 (cell) and 0 (membrane), about 22 % membrane by default, like
/// ISBI 2012.
///
/// The same configuration and slice index always give the same slice, on any machine; slices are
/// independent of each other, so any subset can be generated in any order.
///
/// ```swift
/// let em = SyntheticEM(width: 256, height: 256, seed: 1)
/// let (volume, labels) = em.stacks(count: 30)
/// try em.write(to: folder)            // train-volume.tif, train-labels.tif, test-volume.tif
/// let data = try em.dataset()         // an ISBIDataset without touching the disk
/// ```
public struct SyntheticEM: Sendable {
    /// What the generated slices look like.
    public struct Configuration: Sendable, Equatable {
        /// Slice width in pixels.
        public var width: Int
        /// Slice height in pixels.
        public var height: Int
        /// The seed; with the slice index it determines every pixel.
        public var seed: UInt64
        /// Spacing of the cell seeds' grid, in pixels (cells average a bit more, as some seeds are dropped).
        public var cellSpacing: Float
        /// Mean fraction of grid seeds dropped (the rate varies smoothly over the slice, up to 0.6), merging
        /// neighbors into larger cells.
        public var seedDropRate: Float
        /// Full membrane width range in pixels; each border draws its own width from it.
        public var membraneWidth: ClosedRange<Float>
        /// Standard deviation of the per-pixel Gaussian noise, in intensity units (image range 0...1).
        public var noise: Float
        /// Standard deviation of the Gaussian blur, in pixels (0 for none).
        public var blur: Float
        /// Mean number of organelle-like blobs per cell (a quarter of them mitochondria-like ellipses, the
        /// rest vesicle-like rings, with a per-cell varying rate).
        public var organellesPerCell: Float

        /// Creates a configuration; the defaults give ISBI-like slices (about 22 % membrane).
        public init(width: Int = 256, height: Int = 256, seed: UInt64 = 2012, cellSpacing: Float = 34,
                    seedDropRate: Float = 0.2, membraneWidth: ClosedRange<Float> = 2.5...6.5, noise: Float = 0.05,
                    blur: Float = 0.8, organellesPerCell: Float = 2) {
            self.width = width
            self.height = height
            self.seed = seed
            self.cellSpacing = cellSpacing
            self.seedDropRate = seedDropRate
            self.membraneWidth = membraneWidth
            self.noise = noise
            self.blur = blur
            self.organellesPerCell = organellesPerCell
        }
    }

    /// Label value of cell pixels.
    public static let cellValue: UInt8 = 255
    /// Label value of membrane pixels.
    public static let membraneValue: UInt8 = 0

    /// The configuration.
    public var configuration: Configuration

    /// Creates a generator.
    public init(_ configuration: Configuration = Configuration()) {
        precondition(configuration.width > 0 && configuration.height > 0, "SyntheticEM: empty slice size")
        precondition(configuration.cellSpacing >= 4, "SyntheticEM: cellSpacing must be at least 4 pixels")
        self.configuration = configuration
    }

    /// Creates a generator of `width x height` slices with the default look.
    public init(width: Int, height: Int, seed: UInt64 = 2012) {
        self.init(Configuration(width: width, height: height, seed: seed))
    }

    /// Generates slice `index`: 8-bit image and labels (255 cell, 0 membrane), row-major.
    public func slice(_ index: Int) -> (image: [UInt8], label: [UInt8]) {
        let n = configuration.width * configuration.height
        var image = [UInt8](repeating: 0, count: n)
        var label = [UInt8](repeating: 0, count: n)
        image.withUnsafeMutableBufferPointer { i in
            label.withUnsafeMutableBufferPointer { l in render(index, image: i.baseAddress!, label: l.baseAddress!) }
        }
        return (image, label)
    }

    /// Generates slices `first ..< first + count` as 8-bit stacks: the volume and its labels (0 / 255).
    /// Slices are rendered in parallel; the result does not depend on the thread count.
    public func stacks(count: Int, first: Int = 0) -> (volume: ImageStack, labels: ImageStack) {
        precondition(count >= 0, "SyntheticEM.stacks: negative count")
        let n = configuration.width * configuration.height
        var image = [UInt8](repeating: 0, count: n * count)
        var label = [UInt8](repeating: 0, count: n * count)
        image.withUnsafeMutableBufferPointer { ib in
            label.withUnsafeMutableBufferPointer { lb in
                let ip = ib.baseAddress, lp = lb.baseAddress
                DispatchQueue.concurrentPerform(iterations: count) { k in
                    render(first + k, image: ip! + k * n, label: lp! + k * n)
                }
            }
        }
        let w = configuration.width, h = configuration.height
        return (ImageStack(width: w, height: h, pages: count, pixels: image.map(Float.init), format: .uint8),
                ImageStack(width: w, height: h, pages: count, pixels: label.map(Float.init), format: .uint8))
    }

    /// An `ISBIDataset` of `trainCount` labeled slices (indices 0..<trainCount) and `testCount` unlabeled
    /// test slices (the following indices), built in memory.
    public func dataset(trainCount: Int = 30, testCount: Int = 0,
                        validationSlices: ClosedRange<Int>? = nil) throws -> ISBIDataset {
        let (volume, labels) = stacks(count: trainCount)
        let test = testCount > 0 ? stacks(count: testCount, first: trainCount).volume : nil
        return try ISBIDataset(volume: volume, labels: labels, test: test, validationSlices: validationSlices,
                               labelsName: "synthetic labels")
    }

    /// Writes a dataset in the ISBI layout into `folder` (created if needed): `train-volume.tif` and
    /// `train-labels.tif` with slices 0..<trainCount, `test-volume.tif` with the next `testCount` slices
    /// (omitted when 0); uncompressed 8-bit multi-page TIFF, each written atomically.
    public func write(to folder: URL, trainCount: Int = 30, testCount: Int = 30) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let (volume, labels) = stacks(count: trainCount)
        try volume.write(to: folder.appendingPathComponent(ISBIDataset.volumeFileName), format: .uint8)
        try labels.write(to: folder.appendingPathComponent(ISBIDataset.labelsFileName), format: .uint8)
        if testCount > 0 {
            try stacks(count: testCount, first: trainCount).volume
                .write(to: folder.appendingPathComponent(ISBIDataset.testFileName), format: .uint8)
        }
    }

    // MARK: rendering

    private struct Cell {
        var x: Float, y: Float
        var brightness: Float
        var firstBlob: Int, blobCount: Int
    }

    private struct Blob {
        var x: Float, y: Float
        var cos: Float, sin: Float
        var inverseA2: Float, inverseB2: Float   // 1 / semi-axis^2
        var inner2: Float                        // (inner radius / outer)^2: 0 filled, > 0 a ring
        var value: Float
    }

    private func generator(_ index: Int, _ stream: UInt64) -> SeededGenerator {
        var z = configuration.seed &* 0x9E37_79B9_7F4A_7C15
        z ^= UInt64(bitPattern: Int64(index)) &* 0xBF58_476D_1CE4_E5B9
        z ^= stream &* 0x94D0_49BB_1331_11EB
        return SeededGenerator(seed: z)
    }

    private func render(_ index: Int, image: UnsafeMutablePointer<UInt8>, label: UnsafeMutablePointer<UInt8>) {
        let c = configuration
        let w = c.width, h = c.height
        let spacing = c.cellSpacing
        var rng = generator(index, 1)

        // Seeds on a jittered grid with a margin of two grid cells, so every pixel's neighborhood is full.
        let margin = 2
        let gw = Int((Float(w) / spacing).rounded(.up)) + 2 * margin
        let gh = Int((Float(h) / spacing).rounded(.up)) + 2 * margin
        var cellOfGrid = [Int32](repeating: -1, count: gw * gh)
        var cells: [Cell] = []
        var blobs: [Blob] = []
        // Seeds are dropped with a smoothly varying probability: regions of large and of small cells.
        var dropField = ValueNoise(width: gw, height: gh, cell: 3, generator: generator(index, 8))
        for gy in 0..<gh {
            for gx in 0..<gw {
                let jx = rng.nextUnitFloat(), jy = rng.nextUnitFloat(), drop = rng.nextUnitFloat()
                let brightness = 0.72 + 0.14 * (rng.nextUnitFloat() - 0.5)
                let dropProbability = min(0.6, 2 * c.seedDropRate * dropField.sample(Float(gx), Float(gy)))
                if drop < dropProbability { continue }
                let x = (Float(gx - margin) + 0.05 + 0.9 * jx) * spacing
                let y = (Float(gy - margin) + 0.05 + 0.9 * jy) * spacing
                cellOfGrid[gy * gw + gx] = Int32(cells.count)
                var cell = Cell(x: x, y: y, brightness: brightness, firstBlob: blobs.count, blobCount: 0)
                // Organelles around the seed (which lies well inside its cell): mitochondria-like dark
                // ellipses, and vesicle-like small dark rings, a cell-dependent number of them.
                let mitochondria = poisson(c.organellesPerCell * 0.25, &rng)
                let vesicles = poisson(c.organellesPerCell * 1.5 * rng.nextUnitFloat(), &rng)
                for k in 0..<(mitochondria + vesicles) {
                    let ring = k >= mitochondria
                    let a = ring ? 2 + 2.5 * rng.nextUnitFloat() : 3 + 5 * rng.nextUnitFloat()
                    let b = ring ? a * (0.8 + 0.2 * rng.nextUnitFloat()) : a * (0.4 + 0.4 * rng.nextUnitFloat())
                    let angle = Float.pi * rng.nextUnitFloat()
                    let r = (ring ? 0.35 : 0.2) * spacing * rng.nextUnitFloat().squareRoot()
                    let phi = 2 * Float.pi * rng.nextUnitFloat()
                    let value = ring ? 0.36 + 0.12 * rng.nextUnitFloat() : 0.30 + 0.14 * rng.nextUnitFloat()
                    let inner: Float = ring ? 0.4 + 0.2 * rng.nextUnitFloat() : 0
                    blobs.append(Blob(x: x + r * Foundation.cos(phi), y: y + r * Foundation.sin(phi),
                                      cos: Foundation.cos(angle), sin: Foundation.sin(angle),
                                      inverseA2: 1 / (a * a), inverseB2: 1 / (b * b), inner2: inner * inner,
                                      value: value))
                    cell.blobCount += 1
                }
                cells.append(cell)
            }
        }

        // Smooth fields: domain warp (x, y), membrane width along borders, two textures.
        var warpX = ValueNoise(width: w, height: h, cell: spacing * 1.2, generator: generator(index, 2))
        var warpY = ValueNoise(width: w, height: h, cell: spacing * 1.2, generator: generator(index, 3))
        var widthNoise = ValueNoise(width: w, height: h, cell: spacing * 0.6, generator: generator(index, 4))
        var coarse = ValueNoise(width: w, height: h, cell: 24, generator: generator(index, 5))
        var illumination = ValueNoise(width: w, height: h, cell: 110, generator: generator(index, 9))
        var fine = ValueNoise(width: w, height: h, cell: 3, generator: generator(index, 6))
        let warpAmplitude = 0.25 * spacing
        let halfWidthRange = (c.membraneWidth.lowerBound / 2)...(c.membraneWidth.upperBound / 2)

        let n = w * h
        let intensity = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { intensity.deallocate() }

        cells.withUnsafeBufferPointer { cellsBuffer in
        blobs.withUnsafeBufferPointer { blobsBuffer in
        cellOfGrid.withUnsafeBufferPointer { gridBuffer in
        let cells = cellsBuffer.baseAddress!, blobs = blobsBuffer.baseAddress, cellOfGrid = gridBuffer.baseAddress!
        var candidates: (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32,
                         Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)
            = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var lastPair = UInt64.max
        var pairHalfWidth: Float = 0, membraneValue: Float = 0
        withUnsafeMutableBytes(of: &candidates) { candidateBytes in
        let candidates = candidateBytes.baseAddress!.assumingMemoryBound(to: Int32.self)
        for y in 0..<h {
            for x in 0..<w {
                let px = Float(x) + 0.5 + warpAmplitude * (2 * warpX.sample(Float(x), Float(y)) - 1)
                let py = Float(y) + 0.5 + warpAmplitude * (2 * warpY.sample(Float(x), Float(y)) - 1)
                let gx = Int((px / spacing).rounded(.down)) + margin
                let gy = Int((py / spacing).rounded(.down)) + margin
                // Nearest seed among the 5 x 5 grid neighborhood.
                var count = 0
                var best: Int32 = -1
                var bestD2 = Float.infinity
                for dy in -2...2 {
                    let yy = min(max(gy + dy, 0), gh - 1)
                    for dx in -2...2 {
                        let xx = min(max(gx + dx, 0), gw - 1)
                        let id = cellOfGrid[yy * gw + xx]
                        if id < 0 { continue }
                        candidates[count] = id
                        count += 1
                        let s = cells[Int(id)]
                        let d2 = (px - s.x) * (px - s.x) + (py - s.y) * (py - s.y)
                        if d2 < bestD2 { bestD2 = d2; best = id }
                    }
                }
                let owner = cells[Int(best)]
                // Distance to the cell's border: the nearest bisector with any other candidate.
                var border = Float.infinity
                var other: Int32 = best
                for k in 0..<count {
                    let id = candidates[k]
                    if id == best { continue }
                    let s = cells[Int(id)]
                    let d2 = (px - s.x) * (px - s.x) + (py - s.y) * (py - s.y)
                    let sep = ((s.x - owner.x) * (s.x - owner.x) + (s.y - owner.y) * (s.y - owner.y)).squareRoot()
                    let d = (d2 - bestD2) / (2 * sep)
                    if d < border { border = d; other = id }
                }
                // Per-border width and contrast from a hash of the (unordered) pair of cells.
                let pair = UInt64(min(best, other)) << 32 | UInt64(max(best, other))
                if pair != lastPair {
                    lastPair = pair
                    pairHalfWidth = halfWidthRange.lowerBound
                        + (halfWidthRange.upperBound - halfWidthRange.lowerBound) * hashUnit(pair, 1)
                    membraneValue = 0.08 + 0.22 * hashUnit(pair, 2)
                }
                let halfWidth = pairHalfWidth * (0.75 + 0.5 * widthNoise.sample(Float(x), Float(y)))

                let isMembrane = border < halfWidth
                label[y * w + x] = isMembrane ? SyntheticEM.membraneValue : SyntheticEM.cellValue

                var value = owner.brightness + 0.10 * (coarse.sample(Float(x), Float(y)) - 0.5)
                    + 0.14 * (illumination.sample(Float(x), Float(y)) - 0.5)
                    + 0.08 * (fine.sample(Float(x), Float(y)) - 0.5)
                if owner.blobCount > 0 && border > halfWidth + 1.5 {
                    for b in owner.firstBlob ..< owner.firstBlob + owner.blobCount {
                        let blob = blobs![b]
                        let ex = px - blob.x, ey = py - blob.y
                        let u = ex * blob.cos + ey * blob.sin, v = -ex * blob.sin + ey * blob.cos
                        let r = u * u * blob.inverseA2 + v * v * blob.inverseB2
                        if r < 1 && r > blob.inner2 {
                            let edge = min(1, (1 - r) * 4, (r - blob.inner2) * 6)   // soft rims
                            value += (blob.value - value) * edge
                        }
                    }
                }
                // Membrane profile: fully dark inside ~80 % of the half width, fading out just beyond it.
                let t = smoothstep(halfWidth * 1.25, halfWidth * 0.8, border)
                value += (membraneValue - value) * t
                intensity[y * w + x] = value
            }
        }
        }
        }
        }
        }

        var noiseRNG = generator(index, 7)
        if c.noise > 0 {
            for i in 0..<n { intensity[i] += 0.6 * c.noise * fastNormal(&noiseRNG) }
        }
        if c.blur > 0 { gaussianBlur(intensity, width: w, height: h, sigma: c.blur) }
        for i in 0..<n {
            var v = intensity[i]
            if c.noise > 0 { v += 0.8 * c.noise * fastNormal(&noiseRNG) }
            image[i] = UInt8(min(max(v * 255, 0), 255).rounded())
        }
    }

    private func hashUnit(_ key: UInt64, _ salt: UInt64) -> Float {
        var z = key &+ configuration.seed &* 0x2545_F491_4F6C_DD1D &+ salt &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) * (1.0 / 16_777_216.0)
    }
}

/// An approximately standard normal sample from one 64-bit draw: the sum of four 16-bit uniforms
/// (Irwin-Hall), rescaled to unit variance. Plenty for image noise, and much cheaper than Box-Muller.
@inline(__always) private func fastNormal(_ g: inout SeededGenerator) -> Float {
    let r = g.next()
    let sum = Float(r & 0xFFFF) + Float((r >> 16) & 0xFFFF) + Float((r >> 32) & 0xFFFF) + Float(r >> 48)
    return (sum * (1 / 65536) - 2) * 1.7320508
}

/// A Poisson sample (Knuth's method; the means here are small).
private func poisson(_ mean: Float, _ g: inout SeededGenerator) -> Int {
    guard mean > 0 else { return 0 }
    let limit = Foundation.exp(-min(mean, 30))
    var k = 0
    var p: Float = g.nextUnitFloat()
    while p > limit && k < 100 {
        k += 1
        p *= g.nextUnitFloat()
    }
    return k
}

@inline(__always) private func smoothstep(_ edge0: Float, _ edge1: Float, _ x: Float) -> Float {
    let t = min(max((x - edge0) / (edge1 - edge0), 0), 1)
    return t * t * (3 - 2 * t)
}

/// Smooth value noise in [0, 1]: random values on a coarse grid, smoothstep-interpolated.
private struct ValueNoise {
    let gridWidth: Int
    let inverseCell: Float
    var values: [Float]

    init(width: Int, height: Int, cell: Float, generator: SeededGenerator) {
        var g = generator
        let c = max(cell, 1)
        gridWidth = Int(Float(width) / c) + 3
        let gridHeight = Int(Float(height) / c) + 3
        inverseCell = 1 / c
        values = (0..<(gridWidth * gridHeight)).map { _ in g.nextUnitFloat() }
    }

    @inline(__always) mutating func sample(_ x: Float, _ y: Float) -> Float {
        let fx = x * inverseCell, fy = y * inverseCell
        let ix = Int(fx), iy = Int(fy)
        var tx = fx - Float(ix), ty = fy - Float(iy)
        tx = tx * tx * (3 - 2 * tx)
        ty = ty * ty * (3 - 2 * ty)
        let i = iy * gridWidth + ix
        return values.withUnsafeBufferPointer { v in
            let a = v[i] + (v[i + 1] - v[i]) * tx
            let b = v[i + gridWidth] + (v[i + gridWidth + 1] - v[i + gridWidth]) * tx
            return a + (b - a) * ty
        }
    }
}

/// In-place separable Gaussian blur with mirrored borders.
private func gaussianBlur(_ data: UnsafeMutablePointer<Float>, width w: Int, height h: Int, sigma: Float) {
    let radius = max(1, Int((3 * sigma).rounded(.up)))
    var kernel = (-radius...radius).map { Foundation.exp(-Float($0 * $0) / (2 * sigma * sigma)) }
    let sum = kernel.reduce(0, +)
    for i in kernel.indices { kernel[i] /= sum }
    func mirror(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        var i = i
        while i < 0 || i >= n { i = i < 0 ? -i - 1 : 2 * n - i - 1 }
        return i
    }
    let line = UnsafeMutablePointer<Float>.allocate(capacity: max(w, h))
    defer { line.deallocate() }
    for y in 0..<h {
        let row = data + y * w
        line.update(from: row, count: w)
        blurLine(line, count: w, kernel: kernel, radius: radius, mirror: mirror) { row[$0] = $1 }
    }
    for x in 0..<w {
        for y in 0..<h { line[y] = data[y * w + x] }
        blurLine(line, count: h, kernel: kernel, radius: radius, mirror: mirror) { data[$0 * w + x] = $1 }
    }
}

/// Convolves `line` with `kernel` (2 * radius + 1 taps), mirroring only near the ends, and hands each
/// output to `store`.
@inline(__always) private func blurLine(_ line: UnsafeMutablePointer<Float>, count n: Int, kernel: [Float], radius: Int,
                                        mirror: (Int, Int) -> Int, store: (Int, Float) -> Void) {
    kernel.withUnsafeBufferPointer { kb in
        let k = kb.baseAddress! + radius
        for i in 0..<n {
            var acc: Float = 0
            if i >= radius && i + radius < n {
                let center = line + i
                for j in -radius...radius { acc += k[j] * center[j] }
            } else {
                for j in -radius...radius { acc += k[j] * line[mirror(i + j, n)] }
            }
            store(i, acc)
        }
    }
}
