// JSONCodec under libFuzzer: every input is parsed, and what parses must round-trip
// (`JSONRoundTrip.check`: serialise, parse again to an equal value, serialise to the same bytes).
//
//   scripts/fuzz.sh [seconds]        libFuzzer (built with -sanitize=fuzzer,address -DFUZZING)
//   swift run onboard-fuzz-json FILE|DIR …   replays corpus files through the same check
import Foundation
import OnboardingCore

#if FUZZING
// SwiftPM links an executable's `main` to the module's entry point (`@main`), so the target
// cannot leave `main` to libFuzzer as `swiftc -parse-as-library` would: its entry point hands
// over to libFuzzer's driver instead, which parses libFuzzer's flags and runs the loop.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// One input: a broken property traps, which libFuzzer reports with the input (crash-<sha1>).
/// (libFuzzer's own `main`, linked in but unused, names this symbol too.)
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try JSONRoundTrip.check(bytes)
    } catch {
        fatalError(error.description)
    }
    return 0
}

@main
struct FuzzJSON {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}
#else

/// Without libFuzzer: replays files (or every file in directories) through the same check, so a
/// corpus, a crash input or a CI artifact can be re-run with an ordinary build.
@main
struct ReplayCorpus {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard !arguments.isEmpty else {
            FileHandle.standardError.write(Data("usage: onboard-fuzz-json FILE|DIRECTORY …\n".utf8))
            exit(2)
        }
        var accepted = 0
        var rejected = 0
        var failures = 0
        for path in arguments {
            for file in files(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("cannot read \(file)\n".utf8))
                    failures += 1
                    continue
                }
                do {
                    switch try JSONRoundTrip.check(Array(data)) {
                    case .accepted: accepted += 1
                    case .rejected: rejected += 1
                    }
                } catch {
                    FileHandle.standardError.write(Data("FAIL \(file): \(error)\n".utf8))
                    failures += 1
                }
            }
        }
        print("\(accepted + rejected + failures) inputs: \(accepted) accepted and round-tripped, \(rejected) rejected, \(failures) failed")
        exit(failures == 0 ? 0 : 1)
    }

    /// The path itself, or the regular files in a directory (sorted, not recursive).
    static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { path + "/" + $0 }.filter {
            var nested: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &nested) && !nested.boolValue
        }
    }
}
#endif
