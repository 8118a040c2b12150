import ArgumentParser
import Foundation
import UNet

/// `unet`: train, apply and measure U-Nets for EM segmentation on the CPU.
struct Unet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet",
        abstract: "U-Net segmentation of electron-microscopy stacks on the CPU (swift-unet).",
        discussion: """
            Start with `unet train`: without --data it trains on a synthetic EM dataset it generates into \
            the run folder. Then `unet predict`, `unet evaluate`, `unet info` and `unet export` on the run's \
            checkpoints. Started by `mpirun -np K`, train, predict, evaluate and bench run as K cooperating \
            processes (data-parallel training, pages dealt over the processes). `unet system` shows the CPU \
            and the OpenBLAS kernel in use.

            \(ExitStatus.helpTable)
            """,
        version: versionText,
        subcommands: [Train.self, Predict.self, Evaluate.self, Export.self, Synth.self, Bench.self, Info.self, SystemInfo.self])
}

/// The arguments `runCLI` was given (without the program name), for commands that start copies of
/// themselves (`unet train --members`).
nonisolated(unsafe) var invocationArguments: [String] = []

/// Parses, runs, and turns every failure into one line on stderr and a documented exit code.
func runCLI(_ arguments: [String]) -> Int32 {
    invocationArguments = arguments
    let subcommand = arguments.first.flatMap { name in
        Unet.configuration.subcommands.map { $0._commandName }.contains(name) ? name : nil
    }
    var command: ParsableCommand
    do {
        command = try Unet.parseAsRoot(arguments)
    } catch {
        if Unet.exitCode(for: error) == .success {
            // --help, --version: ArgumentParser prints them and exits 0.
            Unet.exit(withError: error)
        }
        var message = Unet.message(for: error)
        message = message.split(separator: "\n").first.map(String.init) ?? message
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        printError("unet: error: \(message) (see 'unet \(subcommand.map { "\($0) " } ?? "")--help')")
        return ExitStatus.usage.rawValue
    }
    do {
        try command.run()
        finishJob()
        return ExitStatus.success.rawValue
    } catch let exit as ExitCode {
        finishJob()
        return exit.rawValue
    } catch {
        if Unet.exitCode(for: error) == .success { Unet.exit(withError: error) }
        let (message, status) = classify(error)
        if isSameOnEveryRank(error) {
            // Every rank of an MPI job met the same error: one message, from rank 0.
            if jobRank == 0 { printError("unet: error: \(message)") }
            if case .nonFiniteLoss? = error as? TrainingError { finishJob() }
        } else {
            printError("unet: error: \(jobRank == 0 ? "" : "rank \(jobRank): ")\(message)")
        }
        return status.rawValue
    }
}

/// Errors that every rank of an MPI job meets alike, because they come from the command line, the
/// configuration or collective results (the loss is summed over the ranks), not from this process's
/// own files.
func isSameOnEveryRank(_ error: Error) -> Bool {
    if let error = error as? CLIError { return error.status == .usage }
    return error is TrainingError || error is UNetConfigurationError || error is TrainingConfigurationError
}
