#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How pixels outside the source slice are filled when a transform reaches beyond it.
public enum AugmentationFillMode: Sendable, Equatable {
    /// Half-sample symmetric reflection about the edge, the edge pixel repeated
    /// (`d c b a | a b c d | d c b a`), as Keras' `fill_mode="reflect"` / scipy's `"reflect"`.
    case reflect
    /// The nearest edge pixel (`a a a | a b c d | d d d`).
    case nearest
}

/// What `Augmenter` does; the defaults are the tutorial's: rotation +-25 degrees, shear +-0.41 rad,
/// random horizontal and vertical flips, reflect fill, elastic deformation on a 3 x 3 control grid
/// with sigma 10 px, and a random crop to the tile size. Every part can be switched off. Intensity
/// jitter (brightness and contrast) is not the tutorial's and is off unless `brightness` or
/// `contrast` is set.
public struct AugmentationConfiguration: Sendable, Equatable {
    /// Output tile width.
    public var tileWidth: Int
    /// Output tile height.
    public var tileHeight: Int
    /// Random crop position (uniform over all positions where the tile fits); when false the tile
    /// is centred in the slice.
    public var randomCrop: Bool = true
    /// Random rotation about the tile centre.
    public var rotation: Bool = true
    /// Largest rotation, in degrees (uniform in [-max, max]).
    public var maxRotationDegrees: Double = 25
    /// Random shear (Keras' shear matrix [[1, -sin s], [0, cos s]]).
    public var shear: Bool = true
    /// Largest shear angle, in radians (uniform in [-max, max]).
    public var maxShearRadians: Double = 0.41
    /// Mirror left-right with probability 1/2.
    public var horizontalFlip: Bool = true
    /// Mirror top-bottom with probability 1/2.
    public var verticalFlip: Bool = true
    /// Elastic deformation: random displacements on a control grid, smoothly interpolated.
    public var elastic: Bool = true
    /// Control points per axis of the elastic grid (spanning the tile, corners included).
    public var elasticGridPoints: Int = 3
    /// Standard deviation, in pixels, of each control point's displacement along each axis.
    public var elasticSigma: Double = 10
    /// Fill for pixels mapped outside the slice.
    public var fillMode: AugmentationFillMode = .reflect
    /// Largest brightness shift added to the image (whose intensities span [0, 1]): uniform in
    /// [-brightness, brightness] per tile (0 = off). EM slices of one stack differ by ~0.1 in mean.
    public var brightness: Double = 0
    /// Largest relative contrast change: the image is scaled about 0.5 by a factor uniform in
    /// [1 - contrast, 1 + contrast] per tile (0 = off; must be below 1).
    public var contrast: Double = 0

    /// The tutorial's augmentation producing `tileWidth x tileHeight` tiles.
    public init(tileWidth: Int = 256, tileHeight: Int = 256) {
        precondition(tileWidth > 0 && tileHeight > 0, "AugmentationConfiguration: tile \(tileWidth)x\(tileHeight)")
        self.tileWidth = tileWidth
        self.tileHeight = tileHeight
    }

    /// The tutorial's augmentation for square tiles.
    public static func tutorial(tileSize: Int = 256) -> AugmentationConfiguration {
        AugmentationConfiguration(tileWidth: tileSize, tileHeight: tileSize)
    }

    /// Everything off: a plain crop (random if `randomCrop`, else centred).
    public static func none(tileWidth: Int, tileHeight: Int, randomCrop: Bool = true) -> AugmentationConfiguration {
        var c = AugmentationConfiguration(tileWidth: tileWidth, tileHeight: tileHeight)
        c.randomCrop = randomCrop
        c.rotation = false
        c.shear = false
        c.horizontalFlip = false
        c.verticalFlip = false
        c.elastic = false
        return c
    }
}

/// One draw of the random augmentation parameters, which `Augmenter.apply` turns into a warp.
public struct AugmentationParameters: Sendable, Equatable {
    /// Column of the crop's top-left corner in the source slice (negative or beyond when the tile
    /// is larger than the slice: the fill mode supplies the rest).
    public var cropX: Int
    /// Row of the crop's top-left corner in the source slice.
    public var cropY: Int
    /// Rotation angle in radians (counter-clockwise in image coordinates with y down: clockwise on screen).
    public var rotation: Double = 0
    /// Shear angle in radians.
    public var shear: Double = 0
    /// Mirror left-right.
    public var flipHorizontal = false
    /// Mirror top-bottom.
    public var flipVertical = false
    /// Control points per axis of the elastic grid (0 = no elastic deformation).
    public var elasticGridPoints: Int = 0
    /// Displacements at the control points, `[(row * points + column) * 2 + axis]`, axis 0 = x,
    /// 1 = y, in pixels.
    public var elasticDisplacements: [Double] = []
    /// Added to the warped image's intensities (after the contrast change).
    public var brightnessShift: Float = 0
    /// The warped image's intensities are scaled about 0.5 by this factor.
    public var contrastFactor: Float = 1

    /// A plain crop at (`cropX`, `cropY`) with no other transform.
    public init(cropX: Int, cropY: Int) {
        self.cropX = cropX
        self.cropY = cropY
    }
}

/// Random augmentation of an EM slice and its labels, warped together.
///
/// For each output pixel (u, v) of the tile one combined inverse mapping gives the source position,
/// sampled once: the image bilinearly, the labels at the nearest pixel (so they stay class indices).
/// The mapping, in order:
/// 1. elastic: q = (u, v) + d(u, v), where d is interpolated from the control-grid displacements by
///    a natural cubic spline along each axis (tensor product: smooth, C2);
/// 2. flips: q.x -> (W - 1) - q.x, q.y -> (H - 1) - q.y;
/// 3. affine about the tile centre c = ((W-1)/2, (H-1)/2): r = R(rotation) . Shear(shear) . (q - c);
/// 4. source = (cropX, cropY) + c + r, with the fill mode outside the slice.
/// With every part off the tile is exactly the crop. Intensity jitter then maps each image value x
/// to `(x - 0.5) * contrastFactor + 0.5 + brightnessShift`; the labels are untouched.
///
/// A value type (`Sendable`): run it on any thread. All randomness comes from the
/// `SeededGenerator` passed in, drawn in a fixed order (crop x, crop y, rotation, shear,
/// horizontal flip, vertical flip, elastic displacements row by row, x then y, brightness,
/// contrast); a disabled part draws nothing. The same seed and configuration give the same tiles.
public struct Augmenter: Sendable {
    /// The configuration in use.
    public var configuration: AugmentationConfiguration

    /// An augmenter with `configuration` (default: the tutorial's, 256^2 tiles).
    public init(configuration: AugmentationConfiguration = .tutorial()) {
        self.configuration = configuration
    }

    /// Draws the parameters for a slice of `sourceWidth x sourceHeight`.
    public func sampleParameters(sourceWidth: Int, sourceHeight: Int,
                                 using rng: inout SeededGenerator) -> AugmentationParameters {
        let c = configuration
        var p = AugmentationParameters(
            cropX: Augmenter.cropOrigin(source: sourceWidth, tile: c.tileWidth, random: c.randomCrop, using: &rng),
            cropY: Augmenter.cropOrigin(source: sourceHeight, tile: c.tileHeight, random: c.randomCrop, using: &rng))
        if c.rotation {
            p.rotation = (rng.nextUnitDouble() * 2 - 1) * c.maxRotationDegrees * Double.pi / 180
        }
        if c.shear { p.shear = (rng.nextUnitDouble() * 2 - 1) * c.maxShearRadians }
        if c.horizontalFlip { p.flipHorizontal = rng.next() & 1 == 1 }
        if c.verticalFlip { p.flipVertical = rng.next() & 1 == 1 }
        if c.elastic && c.elasticGridPoints > 0 && c.elasticSigma > 0 {
            p.elasticGridPoints = c.elasticGridPoints
            p.elasticDisplacements = (0..<(c.elasticGridPoints * c.elasticGridPoints * 2)).map { _ in
                rng.nextNormal() * c.elasticSigma
            }
        }
        if c.brightness > 0 { p.brightnessShift = Float((rng.nextUnitDouble() * 2 - 1) * c.brightness) }
        if c.contrast > 0 { p.contrastFactor = Float(1 + (rng.nextUnitDouble() * 2 - 1) * c.contrast) }
        return p
    }

    /// Draws parameters and warps `image` and `label` (same size) into one tile.
    public func augment(image: ImagePlane, label: LabelPlane,
                        using rng: inout SeededGenerator) -> (image: ImagePlane, label: LabelPlane) {
        let p = sampleParameters(sourceWidth: image.width, sourceHeight: image.height, using: &rng)
        return apply(p, image: image, label: label)
    }

    /// Warps `image` and `label` (same size) with given parameters into a tile of the configured size.
    public func apply(_ p: AugmentationParameters, image: ImagePlane,
                      label: LabelPlane) -> (image: ImagePlane, label: LabelPlane) {
        precondition(image.width == label.width && image.height == label.height,
                     "Augmenter: image \(image.width)x\(image.height), labels \(label.width)x\(label.height)")
        precondition(image.width > 0 && image.height > 0, "Augmenter: empty slice")
        let tw = configuration.tileWidth, th = configuration.tileHeight
        let sw = image.width, sh = image.height
        let fill = configuration.fillMode

        // Affine part (flips, rotation, shear, crop) as source = A q + b.
        let cx = Double(tw - 1) / 2, cy = Double(th - 1) / 2
        let cr = cos(p.rotation), sr = sin(p.rotation)
        let s00 = 1.0, s01 = -sin(p.shear), s10 = 0.0, s11 = cos(p.shear)
        // M = R . S
        let m00 = cr * s00 - sr * s10, m01 = cr * s01 - sr * s11
        let m10 = sr * s00 + cr * s10, m11 = sr * s01 + cr * s11
        let fx = p.flipHorizontal ? -1.0 : 1.0, fy = p.flipVertical ? -1.0 : 1.0
        let ox = p.flipHorizontal ? Double(tw - 1) : 0, oy = p.flipVertical ? Double(th - 1) : 0
        let a00 = m00 * fx, a01 = m01 * fy, a10 = m10 * fx, a11 = m11 * fy
        let bx = m00 * (ox - cx) + m01 * (oy - cy) + Double(p.cropX) + cx
        let by = m10 * (ox - cx) + m11 * (oy - cy) + Double(p.cropY) + cy
        let identityLinear = p.rotation == 0 && p.shear == 0

        // Elastic spline weights.
        let g = p.elasticGridPoints
        let elastic = g > 0 && p.elasticDisplacements.count == g * g * 2
        let wx = elastic ? naturalSplineWeights(points: g, length: tw) : []
        let wy = elastic ? naturalSplineWeights(points: g, length: th) : []

        var outImage = [Float](repeating: 0, count: tw * th)
        var outLabel = [UInt8](repeating: 0, count: tw * th)
        let gg = max(g, 1)
        let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 2 * gg)
        defer { scratch.deallocate() }
        let rowDX = scratch, rowDY = scratch + gg
        let xPositions = UnsafeMutablePointer<Double>.allocate(capacity: tw)
        defer { xPositions.deallocate() }
        for u in 0..<tw { xPositions[u] = Double(u) }
        image.pixels.withUnsafeBufferPointer { srcBuffer in
            label.classes.withUnsafeBufferPointer { labBuffer in
                outImage.withUnsafeMutableBufferPointer { oiBuffer in
                    outLabel.withUnsafeMutableBufferPointer { olBuffer in
                        wx.withUnsafeBufferPointer { wxBuffer in
                            wy.withUnsafeBufferPointer { wyBuffer in
                                p.elasticDisplacements.withUnsafeBufferPointer { dBuffer in
                                    let src = srcBuffer.baseAddress!, lab = labBuffer.baseAddress!
                                    let oi = oiBuffer.baseAddress!, ol = olBuffer.baseAddress!
                                    for v in 0..<th {
                                        if elastic {
                                            let wyRow = wyBuffer.baseAddress! + v * g
                                            let d = dBuffer.baseAddress!
                                            for k in 0..<g {
                                                var dx = 0.0, dy = 0.0
                                                for l in 0..<g {
                                                    let w = wyRow[l]
                                                    dx += w * d[(l * g + k) * 2]
                                                    dy += w * d[(l * g + k) * 2 + 1]
                                                }
                                                rowDX[k] = dx
                                                rowDY[k] = dy
                                            }
                                        }
                                        let vd = Double(v)
                                        for u in 0..<tw {
                                            var qx = xPositions[u], qy = vd
                                            if elastic {
                                                let wxRow = wxBuffer.baseAddress! + u * g
                                                var dx = 0.0, dy = 0.0
                                                for k in 0..<g {
                                                    let w = wxRow[k]
                                                    dx += w * rowDX[k]
                                                    dy += w * rowDY[k]
                                                }
                                                qx += dx
                                                qy += dy
                                            }
                                            let sx: Double, sy: Double
                                            if identityLinear {
                                                sx = fx * qx + bx
                                                sy = fy * qy + by
                                            } else {
                                                sx = a00 * qx + a01 * qy + bx
                                                sy = a10 * qx + a11 * qy + by
                                            }
                                            let o = v &* tw &+ u
                                            // Image: bilinear.
                                            let x0f = sx.rounded(.down), y0f = sy.rounded(.down)
                                            let tx = Float(sx - x0f), ty = Float(sy - y0f)
                                            let x0 = Int(x0f), y0 = Int(y0f)
                                            let xa: Int, xb: Int, ya: Int, yb: Int
                                            if x0 >= 0 && x0 + 1 < sw && y0 >= 0 && y0 + 1 < sh {
                                                xa = x0; xb = x0 &+ 1; ya = y0 &* sw; yb = ya &+ sw
                                            } else {
                                                xa = fillIndex(x0, sw, fill); xb = fillIndex(x0 + 1, sw, fill)
                                                ya = fillIndex(y0, sh, fill) * sw; yb = fillIndex(y0 + 1, sh, fill) * sw
                                            }
                                            let v00 = src[ya &+ xa], v01 = src[ya &+ xb]
                                            let v10 = src[yb &+ xa], v11 = src[yb &+ xb]
                                            let top = v00 + (v01 - v00) * tx
                                            let bottom = v10 + (v11 - v10) * tx
                                            oi[o] = top + (bottom - top) * ty
                                            // Labels: nearest (ties of .5 round up, towards x0 + 1).
                                            let nx = fillIndex(tx < 0.5 ? x0 : x0 + 1, sw, fill)
                                            let ny = fillIndex(ty < 0.5 ? y0 : y0 + 1, sh, fill)
                                            ol[o] = lab[ny &* sw &+ nx]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if p.contrastFactor != 1 || p.brightnessShift != 0 {
            let scale = p.contrastFactor, offset = 0.5 - 0.5 * p.contrastFactor + p.brightnessShift
            for i in outImage.indices { outImage[i] = outImage[i] * scale + offset }
        }
        return (ImagePlane(width: tw, height: th, pixels: outImage), LabelPlane(width: tw, height: th, classes: outLabel))
    }

    // MARK: Plain crops

    /// A random `width x height` crop of `image` and `label` without any other transform (for
    /// validation or training without augmentation). The position is uniform over all positions
    /// where the tile fits; a tile larger than the slice is centred and filled by reflection.
    public static func randomCrop(image: ImagePlane, label: LabelPlane, width: Int, height: Int,
                                  using rng: inout SeededGenerator) -> (image: ImagePlane, label: LabelPlane) {
        let x = cropOrigin(source: image.width, tile: width, random: true, using: &rng)
        let y = cropOrigin(source: image.height, tile: height, random: true, using: &rng)
        return crop(image: image, label: label, x: x, y: y, width: width, height: height)
    }

    /// The `width x height` crop whose top-left corner is (`x`, `y`); pixels outside the slice are
    /// filled by reflection. Values are copied exactly.
    public static func crop(image: ImagePlane, label: LabelPlane, x: Int, y: Int,
                            width: Int, height: Int) -> (image: ImagePlane, label: LabelPlane) {
        precondition(image.width == label.width && image.height == label.height, "Augmenter.crop: sizes differ")
        precondition(image.width > 0 && image.height > 0 && width > 0 && height > 0, "Augmenter.crop: empty")
        var oi = [Float](repeating: 0, count: width * height)
        var ol = [UInt8](repeating: 0, count: width * height)
        for v in 0..<height {
            let sy = fillIndex(y + v, image.height, .reflect) * image.width
            for u in 0..<width {
                let sx = fillIndex(x + u, image.width, .reflect)
                oi[v * width + u] = image.pixels[sy + sx]
                ol[v * width + u] = label.classes[sy + sx]
            }
        }
        return (ImagePlane(width: width, height: height, pixels: oi), LabelPlane(width: width, height: height, classes: ol))
    }

    static func cropOrigin(source: Int, tile: Int, random: Bool, using rng: inout SeededGenerator) -> Int {
        if source <= tile { return (source - tile) / 2 }     // centred, filled at the sides
        return random ? rng.nextInt(in: 0..<(source - tile + 1)) : (source - tile) / 2
    }
}

/// Index `i` mapped into 0..<n by the fill mode.
@inline(__always) func fillIndex(_ i: Int, _ n: Int, _ mode: AugmentationFillMode) -> Int {
    if i >= 0 && i < n { return i }
    switch mode {
    case .nearest:
        return i < 0 ? 0 : n - 1
    case .reflect:
        let period = 2 * n
        var m = i % period
        if m < 0 { m += period }
        return m < n ? m : period - 1 - m
    }
}

/// Cardinal basis of the natural cubic spline through `points` equally spaced knots spanning
/// 0...(length - 1): `result[x * points + k]` is the weight of knot k's value at position x
/// (0..<length). Weights of a position sum to 1 (constants are reproduced).
func naturalSplineWeights(points n: Int, length: Int) -> [Double] {
    precondition(n >= 1 && length >= 1)
    var weights = [Double](repeating: 0, count: n * length)
    if n == 1 {
        for x in 0..<length { weights[x] = 1 }
        return weights
    }
    let h = length > 1 ? Double(length - 1) / Double(n - 1) : 1
    for k in 0..<n {
        var y = [Double](repeating: 0, count: n)
        y[k] = 1
        // Second derivatives M with M_0 = M_{n-1} = 0; interior: M_{i-1} + 4 M_i + M_{i+1} = 6 (y_{i+1} - 2 y_i + y_{i-1}) / h^2.
        var m = [Double](repeating: 0, count: n)
        if n > 2 {
            let interior = n - 2
            var diag = [Double](repeating: 4, count: interior)
            var rhs = (1...interior).map { i in 6 * (y[i + 1] - 2 * y[i] + y[i - 1]) / (h * h) }
            for i in 1..<interior {            // Thomas algorithm, sub/super-diagonals 1
                let f = 1 / diag[i - 1]
                diag[i] -= f
                rhs[i] -= f * rhs[i - 1]
            }
            m[interior] = rhs[interior - 1] / diag[interior - 1]
            if interior >= 2 {
                for i in stride(from: interior - 2, through: 0, by: -1) {
                    m[i + 1] = (rhs[i] - m[i + 2]) / diag[i]
                }
            }
        }
        for x in 0..<length {
            let pos = Double(x) / h
            let i = min(n - 2, Int(pos))
            let t = pos - Double(i)
            let s = 1 - t
            let value = s * y[i] + t * y[i + 1] + h * h / 6 * ((s * s * s - s) * m[i] + (t * t * t - t) * m[i + 1])
            weights[x * n + k] = value
        }
    }
    return weights
}
