/// A building block of a network that owns parameters, buffers and child modules.
///
/// Children, parameters and buffers are discovered from the stored properties (in declaration
/// order, so names and order are stable): a property `conv1` holding a `Conv2d` whose `weight` is a
/// `Parameter` yields the dotted name `conv1.weight`; arrays of modules add an index
/// (`blocks.0.conv1.weight`). A `Parameter` or `Buffer` with a `key` uses it instead of the property name.
///
/// Optional properties (`let bn: BatchNorm2d?`) count when non-nil. Subclasses may override
/// `namedChildren` to choose other names (as `Sequential` does with `0`, `1`, ...).
///
/// ```swift
/// final class TinyNet: Module {
///     let conv: Conv2d          // conv.weight, conv.bias
///     let head: Conv2d          // head.weight, head.bias
///     init(generator rng: inout SeededGenerator) {
///         conv = Conv2d(inputChannels: 1, outputChannels: 8, kernelSize: 3, padding: .same, generator: &rng)
///         head = Conv2d(inputChannels: 8, outputChannels: 2, kernelSize: 1, generator: &rng)
///     }
///     func callAsFunction(_ x: Tensor) -> Tensor { head(conv(x).relu()) }
/// }
/// ```
open class Module {
    /// True in training mode (batch norm uses batch statistics, dropout drops). Set with `train(_:)`.
    public private(set) var isTraining = true

    /// Creates a module; subclasses set their parameters and children before calling it.
    public init() {}

    /// Sets training (true) or evaluation (false) mode on this module and all its descendants.
    public func train(_ training: Bool = true) {
        for module in allModules() { module.isTraining = training }
    }

    /// Evaluation mode on this module and all its descendants.
    public func eval() { train(false) }

    /// The direct children with their names, in declaration order.
    open var namedChildren: [(String, Module)] {
        var result: [(String, Module)] = []
        for child in Mirror(reflecting: self).allChildren {
            guard let label = child.label.map(Module.cleanLabel) else { continue }
            if let module = child.value as? Module {
                result.append((label, module))
            } else if let modules = child.value as? [Module] {
                for (i, m) in modules.enumerated() { result.append(("\(label).\(i)", m)) }
            }
        }
        return result
    }

    /// This module's own parameters (not its children's), in declaration order.
    open var ownParameters: [(String, Parameter)] {
        Mirror(reflecting: self).allChildren.compactMap { child in
            guard let label = child.label.map(Module.cleanLabel), let p = child.value as? Parameter else { return nil }
            return (p.key ?? label, p)
        }
    }

    /// This module's own buffers (not its children's), in declaration order.
    open var ownBuffers: [(String, Buffer)] {
        Mirror(reflecting: self).allChildren.compactMap { child in
            guard let label = child.label.map(Module.cleanLabel), let b = child.value as? Buffer else { return nil }
            return (b.key ?? label, b)
        }
    }

    /// Every parameter of the tree by dotted name, parents' own parameters before their children's.
    public func namedParameters() -> [(String, Parameter)] {
        var result = ownParameters
        for (name, child) in namedChildren {
            result += child.namedParameters().map { ("\(name).\($0.0)", $0.1) }
        }
        return result
    }

    /// Every buffer of the tree by dotted name.
    public func namedBuffers() -> [(String, Buffer)] {
        var result = ownBuffers
        for (name, child) in namedChildren {
            result += child.namedBuffers().map { ("\(name).\($0.0)", $0.1) }
        }
        return result
    }

    /// The parameters in the fixed order of `namedParameters()`.
    public var parameters: [Parameter] { namedParameters().map(\.1) }

    /// The trainable parameters only.
    public var trainableParameters: [(String, Parameter)] { namedParameters().filter { $0.1.isTrainable } }

    /// Total number of scalar parameters (trainable or not; buffers excluded).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Clears the gradients of all parameters.
    public func zeroGradients() { for p in parameters { p.zeroGradient() } }

    /// This module and all descendants, depth first.
    public func allModules() -> [Module] {
        [self] + namedChildren.flatMap { $0.1.allModules() }
    }

    /// Every parameter and buffer value by dotted name: the module's state for checkpoints.
    public func stateDictionary() -> [(String, Tensor)] {
        namedParameters().map { ($0.0, $0.1.value.detached) } + namedBuffers().map { ($0.0, $0.1.value) }
    }

    /// Swift prefixes lazy and wrapped properties with "$__lazy_storage_$_" / "_"; strip them.
    static func cleanLabel(_ label: String) -> String {
        if label.hasPrefix("$__lazy_storage_$_") { return String(label.dropFirst("$__lazy_storage_$_".count)) }
        return label
    }
}

extension Mirror {
    /// Children including those declared in superclasses (superclass properties first).
    var allChildren: [Mirror.Child] {
        (superclassMirror?.allChildren ?? []) + Array(children)
    }
}
