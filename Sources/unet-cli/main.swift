import Foundation

// The command (`Unet`) and `runCLI` live in CLI.swift, so that this file holds only the entry point
// and the rest of the target can be compiled as a library (the CLI fuzz target in Fuzz/ does).
setvbuf(stdout, nil, _IOLBF, 0)
exit(runCLI(Array(CommandLine.arguments.dropFirst())))
