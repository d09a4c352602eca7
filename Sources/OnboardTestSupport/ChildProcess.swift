#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A program the tests run as a child process, started with `posix_spawn`.
///
/// Why this exists instead of Foundation's `Process`: on Linux, `Process.run()` looks for the
/// highest open descriptor by reading `/proc/self/fd` in the private
/// `findMaximumOpenFromProcSelfFD()`, which copies a fixed 256-byte `d_name` out of every
/// `readdir` entry. Entries with short names are shorter than that, so the copy reads past the
/// end of the directory buffer, and when that buffer ends just before an unmapped page the whole
/// test process dies with SIGSEGV (swiftlang/swift-corelibs-foundation#5472). A test process
/// holding hundreds of sockets reaches such a layout now and then; no lock helps, since only the
/// descriptor table's shape matters. So nothing in the test process uses `Process`: start
/// children with this type.
///
/// The child gets only descriptors 0, 1 and 2 (everything from 3 up is closed in the child, so
/// no socket or pipe of the test process leaks into it), an empty signal mask and the default
/// SIGPIPE action. It stays in the test process's process group.
///
/// ```swift
/// let child = try ChildProcess.start(executable: "/usr/bin/env", arguments: ["python3", "-V"], standardOutput: .pipe)
/// let output = try await child.readAllOutput()
/// let status = await child.waitUntilExit()   // .exited(0)
/// ```
public final class ChildProcess: Sendable {
    /// Where one of the child's output streams goes.
    public enum Output: Sendable, Hashable {
        /// Discarded (`/dev/null`).
        case null
        /// The test process's own stream.
        case inherit
        /// Appended to the file at this path (created if missing).
        case file(String)
        /// A pipe the test process reads: ``readAllOutput()``, ``readAllError()`` or the
        /// ``standardOutput`` / ``standardError`` handles.
        case pipe
        /// For standard error only: wherever standard output goes (`2>&1`).
        case standardOutput
    }

    /// Where the child's standard input comes from.
    public enum Input: Sendable, Hashable {
        /// Empty (`/dev/null`).
        case null
        /// The test process's own standard input.
        case inherit
        /// A pipe the test process writes to through ``standardInput`` (close it to signal the end).
        case pipe
    }

    /// How a child ended.
    public enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
        /// It called `exit` with this code.
        case exited(Int32)
        /// A signal ended it (this signal number).
        case signaled(Int32)

        /// The exit code, or `nil` when a signal ended it.
        public var exitCode: Int32? {
            if case .exited(let code) = self { code } else { nil }
        }

        /// The signal that ended it, or `nil` when it exited.
        public var signal: Int32? {
            if case .signaled(let signal) = self { signal } else { nil }
        }

        /// Whether it exited with code 0.
        public var isSuccess: Bool { self == .exited(0) }

        /// The exit code, or the signal's number: what Foundation's `terminationStatus` gave.
        public var terminationStatus: Int32 {
            switch self {
            case .exited(let code): code
            case .signaled(let signal): signal
            }
        }

        public var description: String {
            switch self {
            case .exited(let code): "exit code \(code)"
            case .signaled(let signal): "signal \(signal)"
            }
        }
    }

    /// What ``run(executable:arguments:environment:workingDirectory:input:standardError:)`` gives
    /// back: how the child ended and everything it wrote.
    public struct Completed: Sendable {
        public let status: ExitStatus
        /// Its standard output (with standard error when that was ``Output/standardOutput``).
        public let output: [UInt8]
        /// Its standard error when that was ``Output/pipe``; empty otherwise.
        public let error: [UInt8]

        /// The output as UTF-8 text.
        public var outputText: String { String(decoding: output, as: UTF8.self) }
        /// The error output as UTF-8 text.
        public var errorText: String { String(decoding: error, as: UTF8.self) }
    }

    /// The child's process id.
    public let pid: pid_t
    /// The write end of the child's standard input when it is ``Input/pipe``; close it (or let
    /// this object go) to give the child its end of input.
    public let standardInput: FileHandle?
    /// The read end of the child's standard output when it is ``Output/pipe``.
    public let standardOutput: FileHandle?
    /// The read end of the child's standard error when it is ``Output/pipe``.
    public let standardError: FileHandle?
    /// The status once the child has been reaped. Every `waitpid` that may reap happens under
    /// this lock, so the status is read exactly once and never lost between threads.
    private let reaped = Mutex<ExitStatus?>(nil)

    private init(pid: pid_t, standardInput: FileHandle?, standardOutput: FileHandle?, standardError: FileHandle?) {
        self.pid = pid
        self.standardInput = standardInput
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    deinit {
        // Reap a child nobody waited for, so it does not stay a zombie until the tests end.
        if reaped.withLock({ $0 }) == nil {
            let pid = pid
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            }
        }
    }

    /// Starts `executable` with `arguments`.
    ///
    /// - Parameters:
    ///   - executable: a path, or a bare name looked up in the test process's `PATH`.
    ///   - arguments: the arguments after the program's name (`argv[0]` is `executable`).
    ///   - environment: the child's whole environment; `nil` passes the test process's own.
    ///   - workingDirectory: the child's working directory; `nil` keeps the test process's.
    ///   - standardInput: `/dev/null` unless said otherwise.
    ///   - standardOutput: `/dev/null` unless said otherwise.
    ///   - standardError: `/dev/null` unless said otherwise.
    /// - Throws: ``ChildProcessError`` when the program cannot be started (missing, not
    ///   executable, or a pipe or file cannot be opened).
    public static func start(
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        workingDirectory: String? = nil,
        standardInput: Input = .null,
        standardOutput: Output = .null,
        standardError: Output = .null
    ) throws -> ChildProcess {
        var actions = try SpawnFileActions()
        defer { actions.destroy() }
        // The child's ends of the pipes, closed here once the child has its copies. The parent's
        // ends belong to FileHandles, which close them when they go (also when this throws).
        var childEnds: [Int32] = []
        defer { childEnds.forEach { _ = close($0) } }

        var inputHandle: FileHandle?
        switch standardInput {
        case .null: try actions.open(STDIN_FILENO, "/dev/null", O_RDONLY)
        case .inherit: try actions.inherit(STDIN_FILENO)
        case .pipe:
            let ends = try pipe()
            inputHandle = FileHandle(fileDescriptor: ends.write, closeOnDealloc: true)
            childEnds.append(ends.read)
            try actions.dup2(ends.read, STDIN_FILENO)
        }
        var outputHandles: [FileHandle?] = []
        for (stream, target) in [(standardOutput, STDOUT_FILENO), (standardError, STDERR_FILENO)] {
            var handle: FileHandle?
            switch stream {
            case .null: try actions.open(target, "/dev/null", O_WRONLY)
            case .inherit: try actions.inherit(target)
            case .file(let path): try actions.open(target, path, O_WRONLY | O_CREAT | O_APPEND)
            case .pipe:
                let ends = try pipe()
                handle = FileHandle(fileDescriptor: ends.read, closeOnDealloc: true)
                childEnds.append(ends.write)
                try actions.dup2(ends.write, target)
            case .standardOutput:
                guard target == STDERR_FILENO else {
                    throw ChildProcessError(description: ".standardOutput is for standard error only")
                }
                try actions.dup2(STDOUT_FILENO, STDERR_FILENO)
            }
            outputHandles.append(handle)
        }
        // After the dup2s: the child keeps 0, 1 and 2 and nothing else of ours.
        try actions.closeFrom(3)
        if let workingDirectory { try actions.chdir(workingDirectory) }

        var attributes = try SpawnAttributes()
        defer { attributes.destroy() }
        try attributes.resetSignals()

        let variables = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let pid = try withCStrings([executable] + arguments) { argv in
            try withCStrings(variables) { envp in
                var pid = pid_t()
                let result =
                    executable.contains("/")
                    ? posix_spawn(&pid, executable, &actions.raw, &attributes.raw, argv, envp)
                    : posix_spawnp(&pid, executable, &actions.raw, &attributes.raw, argv, envp)
                guard result == 0 else {
                    throw ChildProcessError(description: "cannot start \(executable): \(String(cString: strerror(result)))")
                }
                return pid
            }
        }
        return ChildProcess(
            pid: pid, standardInput: inputHandle, standardOutput: outputHandles[0], standardError: outputHandles[1]
        )
    }

    /// Runs `executable` to its end, blocking the calling thread, and returns its status and
    /// output: for synchronous callers (probes in traits, fixtures). Async code should use
    /// ``start(executable:arguments:environment:workingDirectory:standardInput:standardOutput:standardError:)``
    /// and ``waitUntilExit()``, which never block the concurrency pool.
    ///
    /// - Parameters:
    ///   - input: written to the child's standard input, which is then closed; `nil`: `/dev/null`.
    ///   - standardError: ``Output/pipe`` collects it in ``Completed/error``,
    ///     ``Output/standardOutput`` mixes it into ``Completed/output``.
    public static func run(
        executable: String,
        arguments: [String],
        environment: [String: String]? = nil,
        workingDirectory: String? = nil,
        input: [UInt8]? = nil,
        standardError: Output = .null
    ) throws -> Completed {
        let child = try start(
            executable: executable, arguments: arguments, environment: environment, workingDirectory: workingDirectory,
            standardInput: input == nil ? .null : .pipe, standardOutput: .pipe, standardError: standardError
        )
        let done = DispatchGroup()
        if let input, let handle = child.standardInput {
            // On a thread of its own: a child that writes before it has read all its input
            // would otherwise block on a full pipe while we block writing.
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                // A child that exits before reading everything must give EPIPE here, not a
                // SIGPIPE that ends the test process: block it on this thread, which ends soon.
                var pipeSignal = sigset_t()
                sigemptyset(&pipeSignal)
                sigaddset(&pipeSignal, SIGPIPE)
                pthread_sigmask(SIG_BLOCK, &pipeSignal, nil)
                _ = try? Self.writeAll(input, to: handle.fileDescriptor)
                try? handle.close()
            }
        }
        let errorBytes = Collected()
        if let handle = child.standardError {
            // Read beside standard output, so neither pipe can fill up and stall the child.
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                let bytes = (try? Self.readToEnd(handle.fileDescriptor)) ?? []
                errorBytes.bytes.withLock { $0 = bytes }
            }
        }
        let output = try child.standardOutput.map { try Self.readToEnd($0.fileDescriptor) } ?? []
        done.wait()
        let status = child.waitBlocking()
        return Completed(status: status, output: output, error: errorBytes.bytes.withLock { $0 })
    }

    // MARK: - State and signals

    /// Whether the child has not ended yet (reaps it, without blocking, once it has).
    public var isRunning: Bool { exitStatus == nil }

    /// How the child ended, or `nil` while it runs (reaps it, without blocking, once it has).
    public var exitStatus: ExitStatus? { reap() }

    /// The child's exit code, or `nil` while it runs or when a signal ended it.
    public var exitCode: Int32? { exitStatus?.exitCode }

    /// The signal that ended the child, or `nil` while it runs or when it exited.
    public var terminationSignal: Int32? { exitStatus?.signal }

    /// Sends `signal` to the child, unless it has already been reaped (its pid may then belong
    /// to another process).
    public func signal(_ signal: Int32) {
        reaped.withLock { status in
            if status == nil { _ = sendSignal(pid, signal) }
        }
    }

    /// Asks the child to stop: SIGTERM.
    public func terminate() { signal(SIGTERM) }

    /// Ends the child at once: SIGKILL.
    public func kill() { signal(SIGKILL) }

    /// Waits until the child ends and returns how it ended. The wait runs on a thread of its
    /// own, never on the concurrency pool; cancelling the task does not end the wait (stop the
    /// child to end it).
    public func waitUntilExit() async -> ExitStatus {
        if let status = reap() { return status }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.waitBlocking()) }
        }
    }

    // MARK: - Pipes

    /// Reads the child's standard output (``Output/pipe``) until the child closes it.
    public func readAllOutput() async throws -> [UInt8] { try await Self.readAll(standardOutput, "standard output") }

    /// Reads the child's standard error (``Output/pipe``) until the child closes it.
    public func readAllError() async throws -> [UInt8] { try await Self.readAll(standardError, "standard error") }

    private static func readAll(_ handle: FileHandle?, _ name: String) async throws -> [UInt8] {
        guard let handle else { throw ChildProcessError(description: "the child's \(name) is not a pipe") }
        // Blocking reads, so on a thread of their own.
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try readToEnd(handle.fileDescriptor) })
            }
        }
    }

    private static func readToEnd(_ fd: Int32) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes.append(contentsOf: buffer[..<count])
            } else if count == 0 {
                return bytes
            } else if errno != EINTR {
                throw ChildProcessError(description: "read failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count >= 0 {
                offset += count
            } else if errno != EINTR {
                throw ChildProcessError(description: "write failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// A pipe whose ends are close-on-exec, so no other child spawned meanwhile inherits them
    /// (an inherited write end would keep our reader from ever seeing the end of output).
    private static func pipe() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        #if os(Linux)
        if let pipe2 = glibcPipe2 {
            let result = pipe2(&ends, O_CLOEXEC)
            guard result == 0 else { throw ChildProcessError(description: "pipe failed: \(String(cString: strerror(errno)))") }
            return (ends[0], ends[1])
        }
        #endif
        // Not atomic, but every child started here closes descriptors from 3 up anyway.
        let result = systemPipe(&ends)
        if result == 0 { ends.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) } }
        guard result == 0 else { throw ChildProcessError(description: "pipe failed: \(String(cString: strerror(errno)))") }
        return (ends[0], ends[1])
    }

    // MARK: - Reaping

    /// The status if the child has ended (reaping it), else `nil`. Never blocks.
    private func reap() -> ExitStatus? {
        reaped.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &raw, WNOHANG) } while result == -1 && errno == EINTR
            if result == pid {
                status = Self.decode(raw)
            } else if result == -1 {
                // ECHILD: reaped by someone else, its status lost. Say so rather than wait forever.
                status = .exited(-1)
            }
            return status
        }
    }

    /// Blocks the calling thread until the child ends. Waits with `WNOWAIT` (the child stays
    /// reapable) and then reaps under the lock, so ``isRunning`` on another thread never races it.
    private func waitBlocking() -> ExitStatus {
        while true {
            if let status = reap() { return status }
            var info = siginfo_t()
            _ = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT)
        }
    }

    private static func decode(_ raw: Int32) -> ExitStatus {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        let signal = raw & 0x7f
        return signal == 0 ? .exited((raw >> 8) & 0xff) : .signaled(signal)
    }
}

/// A child process could not be started or its pipes not used.
public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

// MARK: - posix_spawn plumbing

/// `posix_spawn_file_actions_t`, with the glibc extensions Swift's Glibc module does not import.
private struct SpawnFileActions {
    #if os(Linux)
    var raw = posix_spawn_file_actions_t()
    #else
    var raw: posix_spawn_file_actions_t? = nil
    #endif

    init() throws {
        try check(posix_spawn_file_actions_init(&raw), "posix_spawn_file_actions_init")
    }

    mutating func destroy() { posix_spawn_file_actions_destroy(&raw) }

    mutating func open(_ fd: Int32, _ path: String, _ flags: Int32) throws {
        try check(posix_spawn_file_actions_addopen(&raw, fd, path, flags, 0o644), "open \(path)")
    }

    mutating func dup2(_ fd: Int32, _ target: Int32) throws {
        try check(posix_spawn_file_actions_adddup2(&raw, fd, target), "dup2")
    }

    /// Keeps the test process's `fd` open in the child: nothing to do on Linux; macOS's
    /// `POSIX_SPAWN_CLOEXEC_DEFAULT` closes every descriptor not named by an action.
    mutating func inherit(_ fd: Int32) throws {
        #if !os(Linux)
        try check(posix_spawn_file_actions_addinherit_np(&raw, fd), "inherit")
        #endif
    }

    /// Closes every descriptor from `lowest` up in the child. glibc 2.34+ has
    /// `posix_spawn_file_actions_addclosefrom_np`; without it nothing is closed (NIO and the
    /// pipes here are close-on-exec anyway). macOS: `POSIX_SPAWN_CLOEXEC_DEFAULT`, set with the
    /// attributes.
    mutating func closeFrom(_ lowest: Int32) throws {
        #if os(Linux)
        if let addCloseFrom = glibcAddCloseFrom {
            try check(addCloseFrom(&raw, lowest), "closefrom")
        }
        #endif
    }

    mutating func chdir(_ path: String) throws {
        #if os(Linux)
        guard let addChdir = glibcAddChdir else {
            throw ChildProcessError(description: "this C library cannot set a child's working directory")
        }
        try check(addChdir(&raw, path), "chdir \(path)")
        #else
        try check(posix_spawn_file_actions_addchdir_np(&raw, path), "chdir \(path)")
        #endif
    }
}

/// `posix_spawnattr_t`.
private struct SpawnAttributes {
    #if os(Linux)
    var raw = posix_spawnattr_t()
    #else
    var raw: posix_spawnattr_t? = nil
    #endif

    init() throws {
        try check(posix_spawnattr_init(&raw), "posix_spawnattr_init")
    }

    mutating func destroy() { posix_spawnattr_destroy(&raw) }

    /// An empty signal mask (the spawning thread may be a pool thread with signals blocked, and
    /// a child would inherit that) and SIGPIPE back to its default action (ignored signals
    /// survive `exec`).
    mutating func resetSignals() throws {
        var mask = sigset_t()
        sigemptyset(&mask)
        try check(posix_spawnattr_setsigmask(&raw, &mask), "posix_spawnattr_setsigmask")
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        try check(posix_spawnattr_setsigdefault(&raw, &defaults), "posix_spawnattr_setsigdefault")
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        #if !os(Linux)
        flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #endif
        try check(posix_spawnattr_setflags(&raw, Int16(flags)), "posix_spawnattr_setflags")
    }
}

#if os(Linux)
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

/// glibc declares these (and `pipe2`) only under `_GNU_SOURCE`, which Swift's Glibc module does not set, so
/// they are looked up at run time (`nil` on a C library without them).
private let glibcAddCloseFrom: AddCloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map {
    unsafeBitCast($0, to: AddCloseFrom.self)
}
private let glibcPipe2: Pipe2? = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
private let glibcAddChdir: AddChdir? = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map {
    unsafeBitCast($0, to: AddChdir.self)
}
#endif

/// What a thread collects for another.
private final class Collected: Sendable {
    let bytes = Mutex<[UInt8]>([])
}

/// `pipe(2)`, named apart from ``ChildProcess``'s own.
private func systemPipe(_ ends: UnsafeMutablePointer<Int32>) -> Int32 { pipe(ends) }

/// `kill(2)`, named apart from ``ChildProcess/kill()``.
private func sendSignal(_ pid: pid_t, _ signal: Int32) -> Int32 { kill(pid, signal) }

private func check(_ result: Int32, _ operation: String) throws {
    guard result == 0 else {
        throw ChildProcessError(description: "\(operation) failed: \(String(cString: strerror(result)))")
    }
}

/// Calls `body` with a NULL-terminated C array of copies of `strings`.
private func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> T) rethrows -> T {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { copies.forEach { free($0) } }
    return try copies.withUnsafeBufferPointer { try body($0.baseAddress!) }
}
