import Foundation

/// Everything that defines a U-Net's architecture. The defaults are the Lasagne tutorial's
/// (`UNetConfiguration.tutorial`): base 64, depth 4, same padding, batch norm, ELU, transposed
/// convolutions that keep the channel count.
public struct UNetConfiguration: Codable, Sendable, Equatable {
    /// Convolution padding.
    public enum Padding: String, Codable, Sendable, CaseIterable {
        /// Output the size of the input (the tutorial).
        case same
        /// No padding: the output shrinks (the U-Net paper's 572^2 -> 388^2), skips are centre-cropped.
        case valid
    }

    /// Nonlinearity after each (batch-normalized) convolution.
    public enum Activation: String, Codable, Sendable, CaseIterable {
        /// ELU with alpha 1 (the tutorial).
        case elu
        /// ReLU.
        case relu
    }

    /// Channels of the transposed convolution that starts each decoder level.
    public enum Upsampling: String, Codable, Sendable, CaseIterable {
        /// Keep the channel count (the tutorial): 1024 -> 1024, then concat 512 -> 1536.
        case keepChannels = "keep"
        /// Halve it (the paper): 1024 -> 512, then concat 512 -> 1024.
        case halveChannels = "halve"
    }

    /// Channels of the input image (1 for EM; 2N+1 with `contextSlices` = N).
    public var inputChannels: Int = 1
    /// 2.5D context: the network sees slices z-N ... z+N of the stack (mirrored at its ends) as its
    /// `inputChannels` = 2N+1 channels and segments slice z (0 = slice z alone).
    public var contextSlices: Int = 0
    /// Output classes (2: membrane, cell).
    public var classes: Int = 2
    /// Filters of the first level; level l has `baseFilters << l`.
    public var baseFilters: Int = 64
    /// Number of pooling levels.
    public var depth: Int = 4
    /// Convolution padding.
    public var padding: Padding = .same
    /// Batch norm after every convolution (convolutions then have no bias).
    public var batchNorm: Bool = true
    /// Dropout probability before the bottleneck (0 = none; the tutorial offers 0.4).
    public var dropout: Float = 0
    /// Activation.
    public var activation: Activation = .elu
    /// Up-convolution channels.
    public var upsampling: Upsampling = .keepChannels

    /// The tutorial's configuration.
    public static let tutorial = UNetConfiguration()

    /// Creates a configuration; unspecified values are the tutorial's.
    public init(inputChannels: Int = 1, classes: Int = 2, baseFilters: Int = 64, depth: Int = 4,
                padding: Padding = .same, batchNorm: Bool = true, dropout: Float = 0,
                activation: Activation = .elu, upsampling: Upsampling = .keepChannels) {
        self.inputChannels = inputChannels
        self.classes = classes
        self.baseFilters = baseFilters
        self.depth = depth
        self.padding = padding
        self.batchNorm = batchNorm
        self.dropout = dropout
        self.activation = activation
        self.upsampling = upsampling
    }

    /// The most context slices on each side `contextSlices` allows.
    public static let maximumContextSlices = 8

    /// A configuration for 2.5D context of `n` slices on each side: `contextSlices = n` and
    /// `inputChannels = 2n + 1`.
    public func withContextSlices(_ n: Int) -> UNetConfiguration {
        var c = self
        c.contextSlices = n
        c.inputChannels = 2 * n + 1
        return c
    }

    /// Decodes a configuration; `contextSlices` (added after the first release) is 0 when absent, so
    /// older checkpoints still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputChannels = try c.decode(Int.self, forKey: .inputChannels)
        classes = try c.decode(Int.self, forKey: .classes)
        baseFilters = try c.decode(Int.self, forKey: .baseFilters)
        depth = try c.decode(Int.self, forKey: .depth)
        padding = try c.decode(Padding.self, forKey: .padding)
        batchNorm = try c.decode(Bool.self, forKey: .batchNorm)
        dropout = try c.decode(Float.self, forKey: .dropout)
        activation = try c.decode(Activation.self, forKey: .activation)
        upsampling = try c.decode(Upsampling.self, forKey: .upsampling)
        contextSlices = try c.decodeIfPresent(Int.self, forKey: .contextSlices) ?? 0
    }

    /// Throws a `UNetConfigurationError` naming the first invalid value.
    public func validate() throws {
        func fail(_ field: String, _ value: Any, _ expected: String) -> UNetConfigurationError {
            UNetConfigurationError(field: field, value: "\(value)", expected: expected)
        }
        guard inputChannels >= 1 && inputChannels <= 64 else { throw fail("inputChannels", inputChannels, "1...64") }
        guard classes >= 2 && classes <= 256 else { throw fail("classes", classes, "2...256") }
        guard baseFilters >= 1 && baseFilters <= 256 else { throw fail("baseFilters", baseFilters, "1...256") }
        guard depth >= 1 && depth <= 6 else { throw fail("depth", depth, "1...6") }
        guard dropout >= 0 && dropout < 1 else { throw fail("dropout", dropout, "a probability in [0, 1)") }
        guard contextSlices >= 0 && contextSlices <= Self.maximumContextSlices else {
            throw fail("contextSlices", contextSlices, "0...\(Self.maximumContextSlices)")
        }
        guard contextSlices == 0 || inputChannels == 2 * contextSlices + 1 else {
            throw fail("inputChannels", inputChannels, "\(2 * contextSlices + 1) (2 x contextSlices + 1)")
        }
    }

    /// Filters at level `level` (0 = full resolution; `depth` = bottleneck).
    public func filters(atLevel level: Int) -> Int { baseFilters << level }

    /// The output side for an input side, or nil when the network cannot take it
    /// (same: a multiple of 2^depth; valid: every pooled map must have an even size).
    public func outputSize(forInputSize input: Int) -> Int? {
        switch padding {
        case .same:
            return input > 0 && input % (1 << depth) == 0 ? input : nil
        case .valid:
            var s = input
            for _ in 0..<depth {
                s -= 4
                guard s > 0, s % 2 == 0 else { return nil }
                s /= 2
            }
            s -= 4
            guard s > 0 else { return nil }
            for _ in 0..<depth { s = s * 2 - 4; guard s > 0 else { return nil } }
            return s
        }
    }

    /// The smallest valid input side >= `side`.
    public func validInputSize(atLeast side: Int) -> Int {
        var s = max(1, side)
        while outputSize(forInputSize: s) == nil { s += 1 }
        return s
    }

    /// Radius in input pixels of an output pixel's receptive field (same padding): two 3x3
    /// convolutions and a pool per encoder level, two at the bottleneck, two per decoder level.
    public var receptiveFieldRadius: Int {
        var r = 0
        for level in 0..<depth { r += 5 << level }  // 2 convs + pool down, 2 convs up, at scale 2^level
        return r + (2 << depth)
    }

    /// How the network tiles, for `TiledPredictor`.
    public var tileGeometry: TileGeometry {
        let alignment = 1 << depth
        // Same padding: discard what saw the zero padding at tile edges, rounded up to the pooling grid.
        let margin = padding == .same ? (receptiveFieldRadius + alignment - 1) / alignment * alignment : 0
        let config = self
        return TileGeometry(alignment: alignment, contextMargin: margin) { config.outputSize(forInputSize: $0) }
    }

    /// Short human-readable summary, e.g. "U-Net base 64, depth 4, same, BN, ELU, up keep".
    public var summary: String {
        "U-Net base \(baseFilters), depth \(depth), \(padding.rawValue) padding, \(batchNorm ? "batch norm" : "no batch norm"), "
            + "\(activation.rawValue.uppercased()), up-conv \(upsampling.rawValue)\(dropout > 0 ? ", dropout \(dropout)" : ""), "
            + "\(inputChannels) -> \(classes) classes"
            + (contextSlices > 0 ? ", context \(contextSlices) slice(s) above and below" : "")
    }
}

/// An invalid `UNetConfiguration` value.
public struct UNetConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The field, e.g. "baseFilters".
    public let field: String
    /// The offending value.
    public let value: String
    /// What was expected.
    public let expected: String
    /// `"invalid U-Net configuration: <field> = <value>, expected <expected>"`.
    public var description: String { "invalid U-Net configuration: \(field) = \(value), expected \(expected)" }
}
