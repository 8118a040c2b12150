import ArgumentParser
import Foundation
import NN
import Tensor
import UNet

extension UNetConfiguration.Padding: ExpressibleByArgument {}
extension UNetConfiguration.Activation: ExpressibleByArgument {}
extension UNetConfiguration.Upsampling: ExpressibleByArgument {}
extension LossKind: ExpressibleByArgument {}
extension TrainingConfiguration.OptimizerKind: ExpressibleByArgument {}
extension TrainingConfiguration.ScheduleKind: ExpressibleByArgument {}

/// The defaults of `unet train` where they differ from the library's (chosen so that the README's
/// first command trains a useful model on the synthetic data in a few minutes on 2 cores).
enum TrainDefaults {
    static let baseFilters = 16
    static let tile = 128
    static let epochs = 10
    static let learningRate: Float = 1e-3
    static let syntheticSlices = 30
    static let syntheticTestSlices = 5
    static let syntheticSize = 256
    static let syntheticSeed: UInt64 = 2012
}

/// The starting point of a new run's training settings; flags given explicitly override it.
enum TrainingRecipe: String, ExpressibleByArgument, CaseIterable {
    /// The tutorial's settings with this CLI's defaults (`TrainDefaults`).
    case tutorial
    /// `TrainingConfiguration.recommended`, the cross-validated recipe.
    case recommended

    /// The training settings before any other flag is applied.
    var configuration: TrainingConfiguration {
        switch self {
        case .tutorial:
            var c = TrainingConfiguration()
            c.epochs = TrainDefaults.epochs
            c.tileSize = TrainDefaults.tile
            c.learningRate = TrainDefaults.learningRate
            return c
        case .recommended:
            return .recommended
        }
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a U-Net on an ISBI-layout dataset (default: generated synthetic EM data).",
        discussion: """
            Writes a run folder: config.json, metrics.csv, training-curve.svg, best.safetensors (best mean \
            validation Jaccard), last.safetensors and previews/*.png. Prints the tutorial's line after every \
            epoch. Ctrl-C saves last.safetensors and prints the command to resume (exit 130).

            Examples:
              unet train                                   # synthetic data, a few minutes on 2 cores
              unet train --data data/isbi2012 --val-slices 25-29 --epochs 50 --tile 256
              unet train --resume runs/20250101-120000/last.safetensors --epochs 20
              unet train --data data/isbi2012 --recipe recommended --epochs 28 --members 2 --out runs/pair

            \(ExitStatus.helpTable)
            """)

    // Data and run folder.
    @Option(help: ArgumentHelp("Dataset folder in the ISBI layout: train-volume.tif, train-labels.tif (multi-page TIFF; labels 0 = membrane, 255 = cell). Default: a synthetic EM dataset (\(TrainDefaults.syntheticSlices) slices of \(TrainDefaults.syntheticSize)^2) generated into <out>/synthetic-data.", valueName: "dir"))
    var data: String?

    @Option(help: ArgumentHelp("Run folder for checkpoints, logs and previews (default: runs/<date-time>; with --resume, the checkpoint's folder).", valueName: "dir"))
    var out: String?

    @Option(name: .customLong("val-slices"), help: ArgumentHelp("Slices held out for validation, 0-based and inclusive: A-B or A (default: the last sixth, e.g. 25-29 of 30).", valueName: "A-B"))
    var valSlices: SliceRange?

    @Option(help: ArgumentHelp("Cross-validation: cut the labelled slices into k contiguous blocks (sizes differ by at most one) and validate on the one --fold names. Not with --val-slices.", valueName: "k"))
    var folds: Int?

    @Option(help: ArgumentHelp("Cross-validation: the block held out for validation, 0-based (0 ... k-1); the other blocks are trained on. Needs --folds.", valueName: "i"))
    var fold: Int?

    // Schedule.
    @Option(help: ArgumentHelp("Starting point of the training settings, which the other flags override: tutorial (the defaults listed here) or recommended (chosen by 5-fold cross-validation on ISBI 2012: --epochs 50 --batch-size 2 --tile 256 --loss cross-entropy+dice --schedule cosine --warmup-epochs 1 --ema 0.99 --no-flips --elastic-sigma 5 --brightness 0.1 --contrast 0.2 --plain-epochs 10, a fifth of --epochs) (default: tutorial).", valueName: "name"))
    var recipe: TrainingRecipe?

    @Option(help: ArgumentHelp("Epochs to train; each covers the training pixels about once in crops (default: \(TrainDefaults.epochs)). With --resume: the new total.", valueName: "n"))
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: ArgumentHelp("Crops per batch (default: 4).", valueName: "n"))
    var batchSize: Int?

    @Option(help: ArgumentHelp("Side of the training crops in pixels, rounded up to what the network takes (default: \(TrainDefaults.tile); the tutorial trains on whole 512^2 slices).", valueName: "px"))
    var tile: Int?

    // Architecture.
    @Option(name: .customLong("base-filters"), help: ArgumentHelp("Filters of the first level; level l has base * 2^l (default: \(TrainDefaults.baseFilters); the tutorial: 64).", valueName: "n"))
    var baseFilters: Int?

    @Option(help: ArgumentHelp("Pooling levels (default: 4).", valueName: "n"))
    var depth: Int?

    @Option(help: ArgumentHelp("Convolution padding: same (output = input size, the tutorial) or valid (the paper; output shrinks, skips cropped) (default: same).", valueName: "same|valid"))
    var padding: UNetConfiguration.Padding?

    @Flag(name: .customLong("no-batch-norm"), help: "Convolutions with bias and no batch norm (default: batch norm after every convolution).")
    var noBatchNorm = false

    @Option(name: .customLong("context-slices"), help: ArgumentHelp("2.5D context: feed the n slices above and below each slice (mirrored at the stack's ends) as 2n+1 input channels; the labels stay the slice's own. Stored in the model, so predict and evaluate use it. With --folds or --val-slices, a validation slice's context may be training slices' images (never their labels) (default: 0).", valueName: "n"))
    var contextSlices: Int?

    @Option(help: ArgumentHelp("Dropout probability before the bottleneck (default: 0; the tutorial offers 0.4).", valueName: "p"))
    var dropout: Float?

    @Option(help: ArgumentHelp("Activation (default: elu).", valueName: "elu|relu"))
    var activation: UNetConfiguration.Activation?

    @Option(help: ArgumentHelp("Channels of the up-convolutions: keep (the tutorial) or halve (the paper) (default: keep).", valueName: "keep|halve"))
    var upsampling: UNetConfiguration.Upsampling?

    // Objective and optimizer.
    @Option(help: ArgumentHelp("Loss: cross-entropy, weighted (class-balanced), border-weighted (the paper's weight map), dice (1 - soft Dice), cross-entropy+dice (their sum), lovasz (the Lovász-softmax surrogate of 1 - mean Jaccard), cross-entropy+lovasz (their sum) (default: cross-entropy).", valueName: "kind"))
    var loss: LossKind?

    @Option(help: ArgumentHelp("Optimizer: adam, adamw, sgd (default: adam, as the tutorial).", valueName: "kind"))
    var optimizer: TrainingConfiguration.OptimizerKind?

    @Option(help: ArgumentHelp("Learning rate (default: \(TrainDefaults.learningRate); the tutorial's 1e-4 needs many more epochs).", valueName: "x"))
    var lr: Float?

    @Option(help: ArgumentHelp("Learning-rate schedule after the warmup: constant; cosine (from --lr down to --min-lr over the epochs after the warmup); step (times --gamma every --step-epochs epochs); plateau (times --gamma when the mean validation Jaccard has not improved for more than --plateau-patience epochs, down to --min-lr) (default: constant).", valueName: "kind"))
    var schedule: TrainingConfiguration.ScheduleKind?

    @Option(name: .customLong("warmup-epochs"), help: ArgumentHelp("Raise the learning rate linearly, batch by batch, from --lr/(n * batches) to --lr over the first n epochs, then follow --schedule (default: 0).", valueName: "n"))
    var warmupEpochs: Int?

    @Option(name: .customLong("min-lr"), help: ArgumentHelp("The cosine schedule's final rate, and the lowest rate plateau reduces to (default: 0).", valueName: "x"))
    var minLR: Float?

    @Option(name: .customLong("step-epochs"), help: ArgumentHelp("Epochs between two decays of the step schedule (default: 10).", valueName: "n"))
    var stepEpochs: Int?

    @Option(help: ArgumentHelp("Decay factor of the step and plateau schedules, in (0, 1) (default: 0.5).", valueName: "x"))
    var gamma: Float?

    @Option(name: .customLong("plateau-patience"), help: ArgumentHelp("Epochs without a better mean validation Jaccard the plateau schedule tolerates before it reduces the rate (default: 5).", valueName: "n"))
    var plateauPatience: Int?

    @Option(help: ArgumentHelp("Keep an exponential moving average of the weights with this decay (e.g. 0.999; warmed up as min(decay, (1+k)/(10+k)) at step k), validate with it and save it as the model in the checkpoints (default: off).", valueName: "decay"))
    var ema: Float?

    @Option(name: .customLong("weight-decay"), help: ArgumentHelp("L2 penalty on convolution weights (adam), or the optimizer's weight decay (adamw, sgd) (default: 0).", valueName: "x"))
    var weightDecay: Float?

    @Option(help: ArgumentHelp("SGD momentum (default: 0.9).", valueName: "x"))
    var momentum: Float?

    @Flag(inversion: .prefixedNo, help: "Augment the training crops: flips, rotation, shear, elastic warp, and brightness and contrast where set (default: on).")
    var augment: Bool?

    @Flag(inversion: .prefixedNo, help: "Random horizontal and vertical flips of the training crops (default: on, the tutorial's). Without them a model can learn a consistent sub-pixel offset of the labels against the images, which flips cancel.")
    var flips: Bool?

    @Option(name: .customLong("max-rotation"), help: ArgumentHelp("Largest rotation of the augmentation, in degrees, 0-180 (default: 25, the tutorial's; 0 = none).", valueName: "deg"))
    var maxRotation: Double?

    @Option(name: .customLong("max-shear"), help: ArgumentHelp("Largest shear angle of the augmentation, in radians, 0-1.5 (default: 0.41, the tutorial's; 0 = none).", valueName: "rad"))
    var maxShear: Double?

    @Option(name: .customLong("elastic-sigma"), help: ArgumentHelp("Standard deviation in pixels of the elastic warp's control-point displacements (default: 10, the tutorial's; 0 = none).", valueName: "px"))
    var elasticSigma: Double?

    @Option(help: ArgumentHelp("Largest brightness shift per crop, on the image's [0, 1] scale: uniform in [-x, x] (default: 0 = none).", valueName: "x"))
    var brightness: Double?

    @Option(help: ArgumentHelp("Largest relative contrast change per crop: intensities scaled about 0.5 by a factor in [1-x, 1+x], x below 1 (default: 0 = none).", valueName: "x"))
    var contrast: Double?

    @Option(name: .customLong("plain-epochs"), help: ArgumentHelp("Train the last n epochs on plain random crops, without the augmentation, so that the model fits unwarped images while the learning rate is low (default: 0 = augment every epoch).", valueName: "n"))
    var plainEpochs: Int?

    // Stopping, reproducibility, output.
    @Option(help: ArgumentHelp("Stop after this many epochs without a better mean validation Jaccard (default: 0 = never).", valueName: "n"))
    var patience: Int?

    @Option(name: .customLong("time-budget"), help: ArgumentHelp("Stop after the epoch during which this many seconds of training have passed (default: 0 = no limit).", valueName: "s"))
    var timeBudget: Double?

    @Option(help: ArgumentHelp("Seed of initialization, sampling, augmentation and dropout (default: 0).", valueName: "k"))
    var seed: UInt64?

    @Option(name: .customLong("preview-every"), help: ArgumentHelp("Write PNG previews of a validation slice after epoch 1 and every n epochs (default: 5; 0 = never).", valueName: "n"))
    var previewEvery: Int?

    @Option(name: .customLong("val-tile"), help: ArgumentHelp("Tile side of the overlap-tile inference used for validation (default: the whole slice plus the network's context margin when its activations fit 1 GiB, as at base 16; otherwise 512, or for depth 5 and deeper the smallest tile keeping a core as wide as the margin).", valueName: "px"))
    var valTile: Int?

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(name: .customLong("sync-batch-norm"), help: "Under mpirun: normalize batch norm with the statistics of the whole batch of every process (as one process would), not each process's share (default: per process, as PyTorch's DDP). May be given with --resume.")
    var syncBatchNorm = false

    @Option(help: ArgumentHelp("Train an ensemble of n models with the seeds --seed, --seed + 1, ... side by side, as n processes sharing --threads, into <out>/seed-<s> (ordinary run folders), then score the mean of their probabilities on the validation slices (<out>/evaluation.json). `unet predict` and `unet evaluate` take <out> as one --model; `--resume <out>` continues every member (default: 1, one model).", valueName: "n"))
    var members: Int?

    @Option(help: ArgumentHelp("Continue the run saved in this checkpoint (last.safetensors): weights, optimizer, epoch count and history. The architecture and training settings come from the checkpoint; --epochs, --data, --val-slices, --out, --threads and --sync-batch-norm may be given. The folder of an ensemble (--members) continues all its members.", valueName: "ckpt"))
    var resume: String?

    func validate() throws {
        func atLeast<T: Comparable>(_ value: T?, _ minimum: T, _ flag: String) throws {
            if let value, value < minimum { throw CLIError.usage("\(flag) \(value): expected at least \(minimum)") }
        }
        try atLeast(epochs, 1, "--epochs")
        try atLeast(batchSize, 1, "--batch-size")
        try atLeast(tile, 8, "--tile")
        try atLeast(baseFilters, 1, "--base-filters")
        try atLeast(depth, 1, "--depth")
        try atLeast(contextSlices, 0, "--context-slices")
        if let contextSlices, contextSlices > UNetConfiguration.maximumContextSlices {
            throw CLIError.usage("--context-slices \(contextSlices): expected 0...\(UNetConfiguration.maximumContextSlices)")
        }
        try atLeast(patience, 0, "--patience")
        try atLeast(previewEvery, 0, "--preview-every")
        try atLeast(valTile, 16, "--val-tile")
        try atLeast(timeBudget, 0, "--time-budget")
        try atLeast(warmupEpochs, 0, "--warmup-epochs")
        try atLeast(stepEpochs, 1, "--step-epochs")
        try atLeast(plateauPatience, 0, "--plateau-patience")
        if let members, members < 1 || members > 64 { throw CLIError.usage("--members \(members): expected 1...64 models") }
        let base = (recipe ?? .tutorial).configuration
        if let warmupEpochs, warmupEpochs >= (epochs ?? base.epochs), resume == nil {
            throw CLIError.usage("--warmup-epochs \(warmupEpochs): expected fewer than the \(epochs ?? base.epochs) epochs (--epochs)")
        }
        if let minLR, !(minLR >= 0 && minLR.isFinite) { throw CLIError.usage("--min-lr \(minLR): expected a number >= 0") }
        if let minLR, minLR > (lr ?? base.learningRate) {
            throw CLIError.usage("--min-lr \(minLR): expected at most the learning rate \(lr ?? base.learningRate) (--lr)")
        }
        if let gamma, !(gamma > 0 && gamma < 1) { throw CLIError.usage("--gamma \(gamma): expected a factor in (0, 1)") }
        if let ema, !(ema > 0 && ema < 1) { throw CLIError.usage("--ema \(ema): expected a decay in (0, 1), e.g. 0.999") }
        try checkFoldFlags(folds: folds, fold: fold, conflicting: valSlices != nil ? "--val-slices" : nil)
        if let lr, !(lr > 0 && lr.isFinite) { throw CLIError.usage("--lr \(lr): expected a positive number") }
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) { throw CLIError.usage("--weight-decay \(weightDecay): expected >= 0") }
        if let dropout, !(dropout >= 0 && dropout < 1) { throw CLIError.usage("--dropout \(dropout): expected a probability in [0, 1)") }
        if let maxRotation, !(maxRotation >= 0 && maxRotation <= 180) { throw CLIError.usage("--max-rotation \(maxRotation): expected 0...180 degrees") }
        if let maxShear, !(maxShear >= 0 && maxShear <= 1.5) { throw CLIError.usage("--max-shear \(maxShear): expected 0...1.5 radians") }
        if let elasticSigma, !(elasticSigma >= 0 && elasticSigma <= 1000) { throw CLIError.usage("--elastic-sigma \(elasticSigma): expected 0...1000 pixels") }
        if let brightness, !(brightness >= 0 && brightness <= 1) { throw CLIError.usage("--brightness \(brightness): expected 0...1") }
        if let contrast, !(contrast >= 0 && contrast < 1) { throw CLIError.usage("--contrast \(contrast): expected 0 or a fraction below 1") }
        if let plainEpochs, plainEpochs < 0 { throw CLIError.usage("--plain-epochs \(plainEpochs): expected 0 or more epochs") }
        if resume != nil {
            let fixed: [(String, Bool)] = [
                ("--recipe", recipe != nil), ("--batch-size", batchSize != nil), ("--tile", tile != nil), ("--base-filters", baseFilters != nil),
                ("--depth", depth != nil), ("--context-slices", contextSlices != nil), ("--padding", padding != nil), ("--no-batch-norm", noBatchNorm),
                ("--dropout", dropout != nil), ("--activation", activation != nil), ("--upsampling", upsampling != nil),
                ("--loss", loss != nil), ("--optimizer", optimizer != nil), ("--lr", lr != nil),
                ("--weight-decay", weightDecay != nil), ("--momentum", momentum != nil), ("--augment/--no-augment", augment != nil),
                ("--flips/--no-flips", flips != nil), ("--max-rotation", maxRotation != nil), ("--max-shear", maxShear != nil), ("--elastic-sigma", elasticSigma != nil),
                ("--brightness", brightness != nil), ("--contrast", contrast != nil), ("--plain-epochs", plainEpochs != nil),
                ("--patience", patience != nil), ("--time-budget", timeBudget != nil), ("--seed", seed != nil),
                ("--preview-every", previewEvery != nil), ("--val-tile", valTile != nil),
                ("--schedule", schedule != nil), ("--warmup-epochs", warmupEpochs != nil), ("--min-lr", minLR != nil),
                ("--step-epochs", stepEpochs != nil), ("--gamma", gamma != nil),
                ("--plateau-patience", plateauPatience != nil), ("--ema", ema != nil),
                ("--folds", folds != nil), ("--fold", fold != nil), ("--members", members != nil),
            ]
            if let flag = fixed.first(where: { $0.1 })?.0 {
                throw CLIError.usage("\(flag) cannot be combined with --resume: the checkpoint's settings are used (only --epochs, --data, --val-slices, --out, --threads, --sync-batch-norm may change)")
            }
        }
    }

    func run() throws {
        if let resume, EnsembleManifest.exists(in: fileURL(resume)) { return try resumeEnsemble(folder: fileURL(resume)) }
        if let members, members > 1 { return try trainEnsemble(members: members) }
        threadOptions.apply()
        let collective = try jobCollective()
        let trainer: Trainer
        if let resume {
            trainer = try resumingTrainer(from: resume, collective: collective)
        } else {
            trainer = try newTrainer(collective: collective)
        }
        trainer.synchronizesBatchNorm = syncBatchNorm
        try train(trainer)
    }

    // MARK: new run

    func newTrainer(collective: Collective) throws -> Trainer {
        var model = UNetConfiguration(baseFilters: baseFilters ?? TrainDefaults.baseFilters)
        if let depth { model.depth = depth }
        if let padding { model.padding = padding }
        model.batchNorm = !noBatchNorm
        if let dropout { model.dropout = dropout }
        if let activation { model.activation = activation }
        if let upsampling { model.upsampling = upsampling }
        if let contextSlices { model = model.withContextSlices(contextSlices) }
        try model.validate()

        var training = (recipe ?? .tutorial).configuration
        if let epochs { training.epochs = epochs }
        // The recipe's plain epochs are the last fifth of however many epochs are asked for.
        if recipe == .recommended, let epochs { training.plainEpochs = TrainingConfiguration.recommended(epochs: epochs).plainEpochs }
        if let tile { training.tileSize = tile }
        if let lr { training.learningRate = lr }
        if let batchSize { training.batchSize = batchSize }
        if let loss { training.loss = loss }
        if let optimizer { training.optimizer = optimizer }
        if let weightDecay { training.weightDecay = weightDecay }
        if let momentum { training.momentum = momentum }
        if let augment { training.augment = augment }
        if let flips { training.flips = flips }
        if let maxRotation { training.maxRotationDegrees = maxRotation }
        if let maxShear { training.maxShearRadians = maxShear }
        if let elasticSigma { training.elasticSigma = elasticSigma }
        if let brightness { training.brightness = brightness }
        if let contrast { training.contrast = contrast }
        if let plainEpochs { training.plainEpochs = plainEpochs }
        if let patience { training.patience = patience }
        if let timeBudget { training.timeBudgetSeconds = timeBudget }
        if let seed { training.seed = seed }
        if let previewEvery { training.previewEvery = previewEvery }
        if let valTile { training.validationTileSize = valTile }
        if let schedule { training.schedule = schedule }
        if let warmupEpochs { training.warmupEpochs = warmupEpochs }
        if let minLR { training.minimumLearningRate = minLR }
        if let stepEpochs { training.stepEpochs = stepEpochs }
        if let gamma { training.gamma = gamma }
        if let plateauPatience { training.plateauPatience = plateauPatience }
        if let ema { training.emaDecay = ema }
        if let folds, let fold { training.folds = folds; training.fold = fold }
        try training.validate()

        if let data { try requireFolder(fileURL(data).path, flag: "--data") }
        let split = try validationSplit()
        // Rank 0 names and creates the run folder (and writes the synthetic data into it); the other
        // ranks of an MPI job receive its path and read the data from there.
        var runFolderPath = ""
        if collective.isLeader {
            let runFolder = out.map(fileURL) ?? defaultRunFolder()
            if FileManager.default.fileExists(atPath: runFolder.appendingPathComponent("last.safetensors").path) {
                throw CLIError.usage("--out \(runFolder.path) already holds a run; choose another --out, or continue it with --resume \(runFolder.appendingPathComponent("last.safetensors").path)")
            }
            try createFolder(runFolder, flag: "--out")
            if data == nil { _ = try writeSyntheticData(into: runFolder) }
            runFolderPath = runFolder.path
        }
        collective.broadcast(&runFolderPath, from: 0)
        let runFolder = URL(fileURLWithPath: runFolderPath)
        let dataFolder = data.map(fileURL) ?? runFolder.appendingPathComponent("synthetic-data")
        let dataset = try loadDataset(folder: dataFolder, flag: "--data", validationSlices: split,
                                      contextSlices: model.contextSlices)

        var rng = SeededGenerator(seed: training.seed)
        let unet = UNetModel(configuration: model, generator: &rng)
        return try Trainer(model: unet, trainSlices: dataset.train, validationSlices: dataset.validation,
                           configuration: training, runFolder: runFolder, dataDescription: dataFolder.path,
                           collective: collective)
    }

    /// Generates the embedded synthetic dataset into `<runFolder>/synthetic-data` (for a run without
    /// --data), saying so; returns that folder.
    func writeSyntheticData(into runFolder: URL) throws -> URL {
        let dataFolder = runFolder.appendingPathComponent("synthetic-data")
        print("No --data given: generating the embedded synthetic EM dataset (\(TrainDefaults.syntheticSlices) labelled slices + \(TrainDefaults.syntheticTestSlices) test slices of \(TrainDefaults.syntheticSize)x\(TrainDefaults.syntheticSize), seed \(TrainDefaults.syntheticSeed)) into \(dataFolder.path)")
        let generator = SyntheticEM(width: TrainDefaults.syntheticSize, height: TrainDefaults.syntheticSize, seed: TrainDefaults.syntheticSeed)
        try generator.write(to: dataFolder, trainCount: TrainDefaults.syntheticSlices, testCount: TrainDefaults.syntheticTestSlices)
        return dataFolder
    }

    /// The validation slices of a new run: --val-slices, the block of --fold of --folds (of the
    /// --data volume's pages, or of the synthetic stack), or nil for the default. Checked before the
    /// run folder is created.
    func validationSplit() throws -> ClosedRange<Int>? {
        guard let folds, let fold else { return valSlices?.range }
        var pages = TrainDefaults.syntheticSlices
        var source = "the synthetic stack"
        if let data {
            let volume = fileURL(data).appendingPathComponent(ISBIDataset.volumeFileName).path
            try requireFile(volume, flag: "--data")
            pages = try TIFFPageReader(path: volume).pages
            source = volume
        }
        do {
            return try ISBIDataset.foldValidationSlices(pageCount: pages, folds: folds, fold: fold)
        } catch let error as ISBIDatasetError {
            throw CLIError.usage("--folds \(folds) --fold \(fold): \(error) (\(source))")
        }
    }

    func defaultRunFolder() -> URL {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let base = "runs/" + formatter.string(from: Date())
        var candidate = fileURL(base)
        var n = 2
        while FileManager.default.fileExists(atPath: candidate.path) {
            candidate = fileURL("\(base)-\(n)")
            n += 1
        }
        return candidate
    }

    // MARK: resume

    func resumingTrainer(from path: String, collective: Collective) throws -> Trainer {
        let checkpoint = try loadCheckpoint(path, flag: "--resume")
        let training = try checkpoint.resumableTrainingConfiguration()
        let completed = checkpoint.completedEpochs
        let total = epochs ?? training.epochs
        if total <= completed {
            // A kill between the last checkpoint and the logs leaves them an epoch short: complete them.
            if collective.isLeader, (try? Trainer.completeLogs(of: checkpoint.url)) == true {
                print("Brought metrics.csv and training-curve.svg up to the \(completed) epoch(s) in \(path)")
            }
            throw CLIError.usage("--epochs \(total): \(path) has already trained \(completed) epoch(s); pass --epochs N with N > \(completed) to continue")
        }
        let dataFolder: URL
        if let data {
            dataFolder = fileURL(data)
        } else if let recorded = checkpoint.recordedDataFolder {
            dataFolder = recorded
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: recorded.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CLIError(.noInput, "--resume \(path): its data folder \(recorded.path) no longer exists; pass --data DIR")
            }
        } else {
            throw CLIError.usage("--resume \(path): the checkpoint does not record its data folder; pass --data DIR")
        }
        let split = valSlices?.range ?? checkpoint.recordedValidationSlices
        let dataset = try loadDataset(folder: dataFolder, flag: "--data", validationSlices: split,
                                      contextSlices: checkpoint.model.contextSlices)
        let runFolder = out.map(fileURL) ?? checkpoint.runFolder
        if collective.isLeader { try createFolder(runFolder, flag: "--out") }
        print("Resuming \(path): \(completed) of \(total) epochs done")
        return try Trainer.resuming(from: checkpoint.url, trainSlices: dataset.train, validationSlices: dataset.validation,
                                    runFolder: runFolder, epochs: total, dataDescription: dataFolder.path,
                                    collective: collective)
    }

    // MARK: training loop

    func train(_ trainer: Trainer) throws {
        // Catch Ctrl-C before announcing the run, so a signal after the announcement always saves.
        let interrupt = InterruptFlag()
        let isLeader = trainer.collective.isLeader   // under mpirun every rank gets the signal; rank 0 says so
        interrupt.install { sig in
            guard isLeader else { return }
            let name = sig == SIGTERM ? "SIGTERM" : "Ctrl-C"
            printError("\n\(name): stopping after this batch and saving a checkpoint (again to quit at once)")
        }
        defer { interrupt.uninstall() }
        let c = trainer.configuration
        let unet = trainer.model.configuration
        let inputTile = unet.validInputSize(atLeast: c.tileSize)
        print("Model: \(unet.summary); \(trainer.model.parameterCount) parameters")
        print("Data: \(trainer.dataDescription): training slices \(describeSlices(trainer.trainSlices.map(\.index))), validation slices \(describeSlices(trainer.validationSlices.map(\.index))) (validation tile \(trainer.validationTileSize))")
        let processes = trainer.collective.size > 1 ? "\(trainer.collective.size) processes x " : ""
        print("Training: \(c.epochs) epochs, batch \(c.batchSize) x \(inputTile)^2 crops, \(c.optimizer.rawValue) lr \(c.learningRate), loss \(c.loss.rawValue), augmentation \(c.augmentationSummary), \(processes)\(Threads.count) thread(s)")
        print("Recipe: \(recipeDescription(c))")
        print("Run folder: \(trainer.runFolder.path)")
        warnIfBLASKernelIsNarrow()

        let progress = TrainingProgress(totalEpochs: c.epochs)
        if let parent = ensembleParent() {
            // A member of `--members`: when the parent ends, its output pipes close. Writes must then
            // fail quietly, not kill the member, which saves its weights and stops at the next batch.
            signal(SIGPIPE, SIG_IGN)
            trainer.shouldStop = { interrupt.isRaised || getppid() != parent }
        } else {
            trainer.shouldStop = { interrupt.isRaised }
        }
        trainer.onEvent = { progress.handle($0) }

        let outcome: TrainingOutcome
        do {
            outcome = try trainer.run()
        } catch {
            progress.clearBar()
            throw error
        }
        progress.clearBar()
        let best = trainer.bestRecord
        let bestText = best.map { String(format: "best mean validation Jaccard %.4f at epoch %d", $0.meanValidationJaccard, $0.epoch) } ?? "no epoch finished"
        switch outcome {
        case .completed, .earlyStopped, .timeBudgetReached:
            print("Done after \(trainer.history.count) epoch(s): \(bestText).")
            print("Checkpoints: \(trainer.bestCheckpoint.path), \(trainer.lastCheckpoint.path)")
            print("Curves: \(trainer.runFolder.appendingPathComponent("training-curve.svg").path), metrics.csv, previews/")
            let split = c.folds > 0 ? " --folds \(c.folds) --fold \(c.fold)" : ""
            print("Next: \(programName) evaluate --model \(trainer.bestCheckpoint.path) --data \(trainer.dataDescription)\(split)")
        case .interrupted(let checkpoint):
            print("Interrupted after \(trainer.history.count) complete epoch(s) (\(bestText)); saved \(checkpoint.path)")
            print("Resume with: \(programName) train --resume \(checkpoint.path)")
            throw ExitCode(ExitStatus.interrupted.rawValue)
        }
    }

}

/// One line naming the schedule, warmup, EMA and fold of a run (for the run's announcement).
func recipeDescription(_ c: TrainingConfiguration) -> String {
    var parts: [String]
    switch c.schedule {
    case .constant: parts = ["constant lr"]
    case .cosine: parts = ["cosine schedule to \(c.minimumLearningRate) over \(c.epochs - c.warmupEpochs) epochs"]
    case .step: parts = ["step schedule x\(c.gamma) every \(c.stepEpochs) epochs"]
    case .plateau: parts = ["plateau schedule x\(c.gamma) after \(c.plateauPatience) epochs without a better mean Jaccard (floor \(c.minimumLearningRate))"]
    }
    if c.warmupEpochs > 0 { parts.append("\(c.warmupEpochs) warmup epoch(s)") }
    parts.append(c.emaDecay > 0 ? "EMA of the weights, decay \(c.emaDecay)" : "no EMA")
    if c.folds > 0 { parts.append("fold \(c.fold) of \(c.folds)") }
    return parts.joined(separator: ", ")
}
