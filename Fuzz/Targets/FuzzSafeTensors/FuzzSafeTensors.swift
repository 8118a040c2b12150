// libFuzzer target: the safetensors reader and the checkpoint loaders on arbitrary bytes:
// `SafeTensors.readHeader(from:)`, `SafeTensors.read(from:)`, `TrainingCheckpoint.load` into a small
// model with and without an Adam optimizer (strict and not), and `CheckpointSummary.load` (with
// `makeModel()` and `resumableTrainingConfiguration()` when it loads). Every input must load or throw
// one of the documented errors; anything else (a trap, an ASan report, an allocation past
// -malloc_limit_mb) is a finding.
// With FUZZ_WRITE_SEEDS=<folder> in the environment it writes its seed files there and exits.
import Foundation
import FuzzSupport
import NN
import Tensor
import UNet
#if canImport(Glibc)
import Glibc
#endif

private let inputPath = NSTemporaryDirectory() + "unet-fuzz-safetensors-\(getpid()).safetensors"

private func writeInput(_ data: UnsafePointer<UInt8>?, _ size: Int) {
    let fd = open(inputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot create \(inputPath)")
    var done = 0
    while done < size, let data {
        let n = write(fd, data + done, size - done)
        precondition(n > 0, "cannot write \(inputPath)")
        done += n
    }
    close(fd)
}

/// The small model checkpoints are loaded into: `0.weight`, `0.bias`, `1.weight`, `1.bias`,
/// `1.running_mean`, `1.running_var`, `1.num_batches_tracked`.
private func smallModel() -> Sequential {
    var rng = SeededGenerator(seed: 7)
    return Sequential {
        Conv2d(inputChannels: 1, outputChannels: 2, kernelSize: 3, generator: &rng)
        BatchNorm2d(channels: 2)
    }
}

/// The errors the readers document; anything else is a finding.
private func expected(_ error: Error, _ what: String) {
    switch error {
    case is SafeTensorsError, is CheckpointError, is UNetCheckpointError: return
    default: fatalError("\(what) threw \(type(of: error)): \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    writeInput(data, size)
    do { _ = try SafeTensors.readHeader(from: inputPath) } catch { expected(error, "SafeTensors.readHeader") }
    do {
        let file = try SafeTensors.read(from: inputPath)
        for (_, tensor) in file.tensors { precondition(tensor.count == tensor.shape.reduce(1, *), "tensor size") }
    } catch { expected(error, "SafeTensors.read") }
    for strict in [true, false] {
        let model = smallModel()
        let adam = Adam(parameters: model.namedParameters())
        do { try TrainingCheckpoint.load(from: inputPath, into: model, optimizer: adam, strict: strict) } catch {
            expected(error, "TrainingCheckpoint.load (Adam, strict: \(strict))")
        }
        do { try TrainingCheckpoint.load(from: inputPath, into: smallModel(), optimizer: nil, strict: strict) } catch {
            expected(error, "TrainingCheckpoint.load (strict: \(strict))")
        }
    }
    do {
        let summary = try CheckpointSummary.load(path: inputPath)
        _ = summary.parameterCount
        _ = try? summary.resumableTrainingConfiguration()
        _ = try summary.makeModel()
    } catch { expected(error, "CheckpointSummary") }
    return 0
}

private func writeSeeds(to folder: String) throws {
    // A bare module save, and training checkpoints with Adam and SGD state after one step.
    let model = smallModel()
    try model.save(to: "\(folder)/module.safetensors")
    let input = Tensor(shape: [1, 1, 4, 4], scalars: (0..<16).map { Float($0) / 16 })
    func gradientStep(_ optimizer: Optimizer) {
        model.zeroGradients()
        model(input).mean().backward()
        optimizer.step()
    }
    let adam = Adam(parameters: model.namedParameters())
    gradientStep(adam)
    try TrainingCheckpoint.save(model: model, optimizer: adam, metadata: ["epoch": "1"], to: "\(folder)/adam.safetensors")
    let sgd = SGD(parameters: model.namedParameters(), learningRate: 0.1, momentum: 0.9)
    gradientStep(sgd)
    try TrainingCheckpoint.save(model: model, optimizer: sgd, to: "\(folder)/sgd.safetensors")
    // A swift-unet checkpoint as `Trainer` writes it (the smallest architecture), for CheckpointSummary.
    let configuration = UNetConfiguration(baseFilters: 1, depth: 1)
    var rng = SeededGenerator(seed: 3)
    let unet = UNetModel(configuration: configuration, generator: &rng)
    let json = { (value: Encodable) in String(decoding: try! JSONEncoder().encode(value), as: UTF8.self) }
    let history = #"[{"epoch":1,"trainCost":0.6,"validationCost":0.5,"validationAccuracy":0.8,"validationJaccard":[0.4,0.7],"meanValidationJaccard":0.55,"seconds":1.5}]"#
    try TrainingCheckpoint.save(model: unet, optimizer: Adam(parameters: unet.namedParameters()), metadata: [
        MetadataKey.model: json(configuration), MetadataKey.training: json(TrainingConfiguration()),
        MetadataKey.epoch: "1", MetadataKey.history: history, MetadataKey.data: "data/synthetic",
        MetadataKey.bestEpoch: "1", MetadataKey.bestMeanJaccard: "0.55",
    ], to: "\(folder)/unet.safetensors")
    // The input of a fixed finding (docs/RELIABILITY.md): metadata of the largest architecture over the
    // smallest one's weights.
    var huge = configuration
    huge.baseFilters = 256
    huge.depth = 6
    try TrainingCheckpoint.save(model: unet, metadata: [MetadataKey.model: json(huge)], to: "\(folder)/huge-model.safetensors")
    // Edge cases: no tensors, only metadata, a zero-size tensor.
    try SafeTensors().write(to: "\(folder)/empty.safetensors")
    try SafeTensors(metadata: ["format": "pt", "k": "v"]).write(to: "\(folder)/metadata.safetensors")
    try SafeTensors(tensors: [(name: "z", tensor: Tensor.zeros([0, 3])), (name: "s", tensor: Tensor.zeros([]))])
        .write(to: "\(folder)/zero-size.safetensors")
    print("FuzzSafeTensors: wrote 8 seeds to \(folder)")
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzSafeTensorsInitialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> Int32 {
    if let folder = requestedSeedFolder {
        do { try writeSeeds(to: folder) } catch { fatalError("writing seeds: \(error)") }
        exit(0)
    }
    atexit { unlink(inputPath) }
    return 0
}

@_cdecl("FuzzSafeTensors_main")
public func FuzzSafeTensorsMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzSafeTensors)
}
