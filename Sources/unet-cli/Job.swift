import Foundation
import MPICollective
import UNet

// The processes of one `unet` run. Under `mpirun` (Open MPI sets OMPI_COMM_WORLD_SIZE in every
// process it starts) the run is one rank of an MPI job; otherwise it is a single process and MPI is
// never initialised.

nonisolated(unsafe) private var job: Collective?

/// True when this process was started by `mpirun`.
var isLaunchedByMPI: Bool {
    let environment = ProcessInfo.processInfo.environment
    return environment["OMPI_COMM_WORLD_SIZE"] != nil || environment["PMIX_RANK"] != nil
}

/// The collective of this run, created on first use: MPI under `mpirun`, else `SingleProcess`.
/// On ranks other than 0, standard output is silenced: rank 0 alone prints progress and results.
func jobCollective() throws -> Collective {
    if let job { return job }
    let collective: Collective
    if isLaunchedByMPI {
        do {
            collective = try MPICollective.initialize()
        } catch {
            throw CLIError(.failure, "cannot start MPI: \(error)")
        }
        if collective.rank != 0 { silenceStandardOutput() }
    } else {
        collective = SingleProcess()
    }
    job = collective
    return collective
}

/// The rank of this process (0 without MPI or before `jobCollective()`).
var jobRank: Int { job?.rank ?? 0 }

/// Ends MPI after a run that every rank finished the same way (success, or an error every rank
/// saw, such as a diverged loss). After an error of this rank alone the process exits without it,
/// and `mpirun` ends the other ranks.
func finishJob() {
    (job as? MPICollective)?.finalize()
}

private func silenceStandardOutput() {
    fflush(stdout)
    let null = open("/dev/null", O_WRONLY)
    if null >= 0 {
        dup2(null, STDOUT_FILENO)
        close(null)
    }
}
