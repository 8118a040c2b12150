/// A tensor whose shape in the source differs from the module's.
public struct ShapeMismatch: Equatable, Sendable, CustomStringConvertible {
    /// The dotted name.
    public let name: String
    /// The module's shape.
    public let expected: [Int]
    /// The shape in the source.
    public let found: [Int]

    /// Creates a mismatch record.
    public init(name: String, expected: [Int], found: [Int]) {
        self.name = name
        self.expected = expected
        self.found = found
    }

    /// `"<name>: module <shape>, checkpoint <shape>"`.
    public var description: String { "\(name): module \(expected), checkpoint \(found)" }
}

/// What loading a state into a module matched, in the module's order (missing, mismatched) or the
/// source's order (unexpected).
public struct StateLoadReport: Equatable, Sendable, CustomStringConvertible {
    /// Names whose values were assigned.
    public var loaded: [String] = []
    /// Module parameters/buffers the source lacks.
    public var missing: [String] = []
    /// Source tensors the module does not have.
    public var unexpected: [String] = []
    /// Names present in both with different shapes (never assigned).
    public var shapeMismatches: [ShapeMismatch] = []

    /// Creates a report.
    public init(loaded: [String] = [], missing: [String] = [], unexpected: [String] = [],
                shapeMismatches: [ShapeMismatch] = []) {
        self.loaded = loaded
        self.missing = missing
        self.unexpected = unexpected
        self.shapeMismatches = shapeMismatches
    }

    /// True when every name matched with the right shape.
    public var isExact: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatches.isEmpty }

    /// The count of loaded tensors, then one line per kind of mismatch listing every name.
    public var description: String {
        var lines = ["loaded \(loaded.count) tensors"]
        if !missing.isEmpty { lines.append("missing: \(missing.joined(separator: ", "))") }
        if !unexpected.isEmpty { lines.append("unexpected: \(unexpected.joined(separator: ", "))") }
        if !shapeMismatches.isEmpty { lines.append("shape mismatch: \(shapeMismatches.map(\.description).joined(separator: "; "))") }
        return lines.joined(separator: "\n")
    }
}

/// A checkpoint that is well-formed safetensors but does not fit the module or optimizer.
public struct CheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file (or a description of the in-memory source).
    public let path: String
    /// What does not fit.
    public let problem: Problem

    /// Creates an error.
    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    /// The specific problem.
    public enum Problem: Equatable, Sendable {
        /// Strict loading found missing, unexpected or mis-shaped tensors; nothing was assigned.
        case stateMismatch(StateLoadReport)
        /// The optimizer state is absent, of another optimizer kind, or inconsistent.
        case optimizerState(String)
        /// A metadata key or value the checkpoint layout reserves or cannot parse.
        case invalidMetadata(String)
    }

    /// `"<path>: <problem>"`; a state mismatch lists every tensor, one line per kind of mismatch.
    public var description: String {
        switch problem {
        case .stateMismatch(let report):
            return "\(path): checkpoint does not match the module (strict loading, nothing loaded):\n\(report)"
        case .optimizerState(let message): return "\(path): \(message)"
        case .invalidMetadata(let message): return "\(path): \(message)"
        }
    }
}

extension CheckpointError.Problem {
    /// The problem in one line: for a state mismatch, the count and first example of each kind
    /// ("2 tensor(s) of another shape, e.g. conv.weight: module [8, 1, 3, 3], checkpoint [4, 1, 3, 3]").
    public var summary: String {
        switch self {
        case .stateMismatch(let report):
            var parts: [String] = []
            if let first = report.shapeMismatches.first {
                parts.append("\(report.shapeMismatches.count) tensor(s) of another shape, e.g. \(first)")
            }
            if let first = report.missing.first { parts.append("\(report.missing.count) missing, e.g. \(first)") }
            if let first = report.unexpected.first { parts.append("\(report.unexpected.count) unexpected, e.g. \(first)") }
            return parts.joined(separator: "; ")
        case .optimizerState(let message): return message
        case .invalidMetadata(let message): return message
        }
    }
}

extension Module {
    /// Assigns tensors by dotted name to this module's parameters and buffers.
    ///
    /// Strict loading (the default) changes nothing and throws `CheckpointError.stateMismatch` unless
    /// the names are exactly the module's and every shape matches. Non-strict loading assigns every
    /// tensor whose name and shape match and reports the rest. Shape-mismatched tensors are never
    /// assigned. The returned report lists what happened either way.
    @discardableResult
    public func loadState(_ tensors: [(String, Tensor)], strict: Bool = true, source: String = "state") throws -> StateLoadReport {
        let report = try loadStateReport(tensors, strict: strict, source: source)
        let available = Dictionary(tensors, uniquingKeysWith: { a, _ in a })
        let loaded = Set(report.loaded)
        for (name, parameter) in namedParameters() where loaded.contains(name) { parameter.assign(available[name]!) }
        for (name, buffer) in namedBuffers() where loaded.contains(name) { buffer.assign(available[name]!) }
        return report
    }

    /// The report `loadState` would give, without assigning anything (throws as it would).
    func loadStateReport(_ tensors: [(String, Tensor)], strict: Bool, source: String) throws -> StateLoadReport {
        var shapes: [String: [Int]] = [:]
        for (name, tensor) in tensors {
            if shapes.updateValue(tensor.shape, forKey: name) != nil {
                throw CheckpointError(path: source, problem: .invalidMetadata("tensor '\(name)' appears twice"))
            }
        }
        var report = StateLoadReport()
        var known = Set<String>()
        let mine = namedParameters().map { ($0.0, $0.1.shape) } + namedBuffers().map { ($0.0, $0.1.value.shape) }
        for (name, shape) in mine {
            known.insert(name)
            guard let found = shapes[name] else { report.missing.append(name); continue }
            if found == shape {
                report.loaded.append(name)
            } else {
                report.shapeMismatches.append(ShapeMismatch(name: name, expected: shape, found: found))
            }
        }
        report.unexpected = tensors.map(\.0).filter { !known.contains($0) }
        if strict && !report.isExact {
            report.loaded = []
            throw CheckpointError(path: source, problem: .stateMismatch(report))
        }
        return report
    }

    /// Writes the parameters and buffers as a safetensors file, named by their dotted names with
    /// PyTorch layouts, so `model.load_state_dict(safetensors.torch.load_file(path))` loads them into
    /// the equivalent PyTorch model. `metadata` goes into the header's `__metadata__`. Atomic.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        var metadata = metadata
        if metadata["format"] == nil { metadata["format"] = "pt" }
        try SafeTensors(tensors: stateDictionary().map { (name: $0.0, tensor: $0.1) }, metadata: metadata).write(to: path)
    }

    /// Loads a safetensors file written by `save(to:)` (or by PyTorch, for F32 tensors). See
    /// `loadState(_:strict:source:)` for strict and non-strict matching. Tensors under the
    /// `optimizer.` prefix of a training checkpoint are not model state and are ignored here.
    @discardableResult
    public func load(from path: String, strict: Bool = true) throws -> StateLoadReport {
        let file = try SafeTensors.read(from: path)
        let tensors = file.tensors.filter { !$0.name.hasPrefix(TrainingCheckpoint.optimizerPrefix) }
        return try loadState(tensors.map { ($0.name, $0.tensor) }, strict: strict, source: path)
    }
}
