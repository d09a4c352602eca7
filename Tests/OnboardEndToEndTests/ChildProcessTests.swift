#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import OnboardTestSupport
import Testing

/// The child processes the tests start (moto, the scripts, the `onboard` binary) go through
/// `ChildProcess`, not Foundation's `Process`, whose `run()` crashes a test process holding many
/// sockets (swiftlang/swift-corelibs-foundation#5472).
@Suite("ChildProcess: what the tests' child processes get and report")
struct ChildProcessTests {
    @Test("standard output and standard error arrive through their pipes, each on its own")
    func pipes() async throws {
        let child = try ChildProcess.start(
            executable: "/bin/sh", arguments: ["-c", "echo to-out; echo to-err >&2; echo more-out"],
            standardOutput: .pipe, standardError: .pipe
        )
        async let output = child.readAllOutput()
        async let error = child.readAllError()
        #expect(String(decoding: try await output, as: UTF8.self) == "to-out\nmore-out\n")
        #expect(String(decoding: try await error, as: UTF8.self) == "to-err\n")
        #expect(await child.waitUntilExit() == .exited(0))
        #expect(child.exitStatus?.isSuccess == true)
    }

    @Test("run: input goes in (more than a pipe holds), output and error come back, 2>&1 mixes them")
    func runToCompletion() throws {
        let input = Array((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 % 251) })
        let copied = try ChildProcess.run(executable: "/bin/cat", arguments: [], input: input)
        #expect(copied.status == .exited(0))
        #expect(copied.output == input)

        let separate = try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "echo out; echo err >&2"], standardError: .pipe)
        #expect(separate.outputText == "out\n")
        #expect(separate.errorText == "err\n")

        let mixed = try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", "echo out; echo err >&2"], standardError: .standardOutput)
        #expect(mixed.outputText == "out\nerr\n")
        #expect(mixed.error.isEmpty)
    }

    @Test("an exit code is reported as such, and so is the signal that ended a child")
    func exitCodesAndSignals() async throws {
        let failing = try ChildProcess.start(executable: "/bin/sh", arguments: ["-c", "exit 3"])
        let failed = await failing.waitUntilExit()
        #expect(failed == .exited(3))
        #expect(failing.exitCode == 3)
        #expect(failing.terminationSignal == nil)
        #expect(!failing.isRunning)

        let killed = try ChildProcess.start(executable: "/bin/sleep", arguments: ["60"])
        #expect(killed.isRunning)
        #expect(killed.exitStatus == nil)
        killed.kill()
        #expect(await killed.waitUntilExit() == .signaled(SIGKILL))
        #expect(killed.terminationSignal == SIGKILL)
        #expect(killed.exitCode == nil)
        #expect(!killed.isRunning)
        killed.kill()  // after reaping: nothing is signalled, nothing fails

        let terminated = try ChildProcess.start(executable: "/bin/sleep", arguments: ["60"])
        terminated.terminate()
        #expect(await terminated.waitUntilExit() == .signaled(SIGTERM))
        #expect(terminated.exitStatus?.terminationStatus == SIGTERM)
    }

    @Test("the environment given is the whole environment; none given passes ours")
    func environment() throws {
        let given = try ChildProcess.run(
            executable: "/bin/sh", arguments: ["-c", #"printf '%s|%s' "$GREETING" "${HOME-unset}""#],
            environment: ["GREETING": "hello there", "PATH": "/usr/bin:/bin"]
        )
        #expect(given.outputText == "hello there|unset")

        let inherited = try ChildProcess.run(executable: "/bin/sh", arguments: ["-c", #"printf '%s' "$PATH""#])
        #expect(inherited.outputText == ProcessInfo.processInfo.environment["PATH"])
    }

    @Test("a bare name is looked up in PATH; the working directory is the one given; a missing program throws")
    func executableAndDirectory() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let pwd = try ChildProcess.run(executable: "pwd", arguments: ["-P"], workingDirectory: folder.path)
        #expect(pwd.status == .exited(0))
        #expect(pwd.outputText == folder.resolvingSymlinksInPath().path + "\n")

        #expect(throws: ChildProcessError.self) {
            try ChildProcess.start(executable: "/nonexistent/program", arguments: [])
        }
        #expect(throws: ChildProcessError.self) {
            try ChildProcess.start(executable: "no-such-program-\(UUID().uuidString)", arguments: [])
        }
    }

    @Test("a descriptor the test process opened without close-on-exec is not open in the child")
    func descriptorsStayHome() throws {
        let file = open("/dev/null", O_RDONLY)
        try #require(file >= 0)
        defer { close(file) }
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(sock >= 0)
        defer { close(sock) }
        // Inheritable here, so only the spawn's own closing can keep them from the child.
        #expect(fcntl(file, F_GETFD) & FD_CLOEXEC == 0)
        #expect(fcntl(sock, F_GETFD) & FD_CLOEXEC == 0)

        let probe = try ChildProcess.run(
            executable: "/bin/sh",
            arguments: ["-c", "for fd in \(file) \(sock); do test -e /proc/self/fd/$fd && echo open $fd; done; ls /proc/$$/fd"]
        )
        #expect(probe.status == .exited(0))
        let lines = probe.outputText.split(separator: "\n").map(String.init)
        #expect(!lines.contains("open \(file)"))
        #expect(!lines.contains("open \(sock)"))
        // The shell holds its standard streams and nothing else of ours.
        #expect(Set(lines) == ["0", "1", "2"])
    }

    @Test("200 children, started while the test process holds 1,000 sockets, all exit 0", .heavyLoad)
    func manyChildrenAmongManySockets() async throws {
        var sockets: [Int32] = []
        defer { sockets.forEach { _ = close($0) } }
        for _ in 0..<1_000 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            try #require(fd >= 0, "socket() failed after \(sockets.count) sockets: errno \(errno)")
            sockets.append(fd)
        }
        // Gaps in the descriptor table, as sockets come and go in a real run.
        for index in stride(from: 0, to: sockets.count, by: 7) {
            close(sockets[index])
            sockets[index] = -1
        }
        sockets.removeAll { $0 < 0 }

        let statuses = try await withThrowingTaskGroup(of: [ChildProcess.ExitStatus].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var statuses: [ChildProcess.ExitStatus] = []
                    for index in 0..<25 {
                        let child = try ChildProcess.start(
                            executable: "/bin/sh", arguments: ["-c", "test \"$1\" = \(worker)-\(index)", "sh", "\(worker)-\(index)"],
                            standardOutput: .pipe
                        )
                        _ = try await child.readAllOutput()
                        statuses.append(await child.waitUntilExit())
                    }
                    return statuses
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(statuses.count == 200)
        #expect(statuses.allSatisfy { $0 == .exited(0) }, "\(statuses.filter { $0 != .exited(0) })")
    }
}
