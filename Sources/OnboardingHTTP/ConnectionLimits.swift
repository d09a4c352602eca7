#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// How long a client may take to send a request, how long an idle keep-alive connection is kept,
/// and how many connections are served at once (`onboard serve`; Lambda has no server).
///
/// The three timeouts are totals, not no-progress timers: a client that sends one byte a second
/// is cut off as surely as one that sends nothing.
public struct ConnectionLimits: Sendable, Equatable {
    /// The request head (request line and headers) must be complete within this, counted from the
    /// connection's opening for its first request and from the first byte of each later request
    /// on a keep-alive connection. Then the connection is closed without an answer.
    public var headerTimeout: Duration = .seconds(10)
    /// The whole body must have arrived within this, counted from the end of the head (a
    /// `Content-Length` the client does not send in time closes the connection).
    public var bodyTimeout: Duration = .seconds(30)
    /// A keep-alive connection that has been answered and sent no byte of a next request since
    /// is closed after this. Longer than the 60 s idle timeout of AWS's load balancers, so a
    /// proxy in front closes its idle connections before the server does (the other order can
    /// send a request into a connection the server is closing).
    public var idleTimeout: Duration = .seconds(75)
    /// Connections served at once. At the cap the server stops accepting: new connections wait
    /// in the kernel's listen backlog (256) until one closes (Hummingbird's
    /// `MaximumAvailableConnections`; one accept may take up to 4 waiting connections, so the
    /// count can pass the cap by 3).
    public var maxConnections: Int = ConnectionLimits.defaultMaxConnections

    public init() {}

    /// 4096, or the process's open-file limit less 128 (the store's files, sockets to AWS) when
    /// that is lower: above it `accept` would fail for want of descriptors, not by policy.
    public static let defaultMaxConnections: Int = {
        var limit = rlimit()
        #if os(Linux)
        let resource = Int32(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        // (No limit, RLIM_INFINITY, clamps to Int.max.)
        guard getrlimit(resource, &limit) == 0 else { return 4096 }
        return max(16, min(4096, Int(clamping: limit.rlim_cur) - 128))
    }()

    /// What the server's start line says about these limits.
    public var summary: String {
        "at most \(maxConnections) at once; timeouts: header \(Self.text(headerTimeout)), body \(Self.text(bodyTimeout)), idle \(Self.text(idleTimeout))"
    }

    private static func text(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}

extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server with the ``ConnectionLimits``' timeouts on every connection
    /// (the connection cap is the `ApplicationConfiguration`'s `availableConnectionsDelegate`,
    /// see ``ConnectionCap``).
    public static func http1(limits: ConnectionLimits) -> HTTPServerBuilder {
        .init { responder in
            SlowClientGuardedHTTP1Channel(http1: HTTP1Channel(responder: responder), limits: limits)
        }
    }
}

/// Hummingbird's `MaximumAvailableConnections`, which also logs a warning when the cap is reached
/// (at most once a minute: under a flood each freed slot is taken again at once).
public struct ConnectionCap: AvailableConnectionsDelegate {
    private var maximum: MaximumAvailableConnections
    private let limit: Int
    private let logger: Logger
    private var open = 0
    private var lastWarning: NIODeadline?

    public init(_ limit: Int, logger: Logger) {
        self.maximum = MaximumAvailableConnections(limit, logger: logger)
        self.limit = limit
        self.logger = logger
    }

    public mutating func connectionOpened() {
        maximum.connectionOpened()
        open += 1
        guard open >= limit else { return }
        let now = NIODeadline.now()
        if let lastWarning, now - lastWarning < .minutes(1) { return }
        lastWarning = now
        logger.warning(
            "connection cap reached: new connections wait until one closes",
            metadata: ["connections": "\(open)", "max_connections": "\(limit)"]
        )
    }

    public mutating func connectionClosed() {
        maximum.connectionClosed()
        open -= 1
    }

    public func isAcceptingNewConnections() -> Bool { maximum.isAcceptingNewConnections() }
}

/// Hummingbird's `HTTP1Channel` with a ``SlowClientGuard`` in each connection's pipeline.
///
/// Hummingbird's own `idleTimeout` is not used: its one timer is restarted by every body part
/// (a client sending a byte of body every few seconds is never cut off), and it does not see
/// header bytes, so it cannot tell a slow head from an idle connection.
struct SlowClientGuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http1: HTTP1Channel
    let limits: ConnectionLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // HTTP1Channel's setup completes synchronously on the channel's event loop, so the
        // guard is in place before the connection's first read.
        http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try SlowClientGuard.install(in: channel, limits: limits, logger: logger)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http1.handle(value: value, logger: logger)
    }
}

/// Closes a connection whose client is too slow to send a request, or that sits idle too long.
///
/// Sits right after NIO's HTTP/1 decoder (it sees request heads, body parts and ends as the
/// decoder produces them, and the responses going out), with a small ``RequestByteWatcher``
/// before the decoder telling it when the first byte of a next request arrives. One deadline at
/// a time, the phase's:
/// - **head**: from the connection's opening, or from the first byte of a later request, until
///   the head is decoded: ``ConnectionLimits/headerTimeout``;
/// - **body**: from the head until the request's end: ``ConnectionLimits/bodyTimeout``;
/// - **idle**: once every request read has been answered and no byte of a next one has come:
///   ``ConnectionLimits/idleTimeout``;
/// - none while a request that was read in full is being answered (the request deadline and
///   the handler bound that).
///
/// When the deadline passes the connection is closed, without an answer (as nginx does).
final class SlowClientGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum Phase: String {
        case head, body, idle
    }

    /// Where the decoder is in the inbound stream.
    private enum Reading {
        /// In a request head (or waiting for the first request's).
        case head
        /// In a request body.
        case body
        /// A request ended; no byte of the next has come.
        case betweenRequests
    }

    private let limits: ConnectionLimits
    private let logger: Logger
    private var reading = Reading.head
    /// Requests read (their head) and not yet answered (their response's end written).
    private var unanswered = 0
    private var started = false
    private var deadline: (at: NIODeadline, phase: Phase)?
    /// The one scheduled check. It may be earlier than ``deadline`` (which then moved later): it
    /// reschedules itself instead of being cancelled and scheduled again on every request.
    private var timer: (at: NIODeadline, task: Scheduled<Void>)?
    private var context: ChannelHandlerContext?

    init(limits: ConnectionLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Adds the guard after the HTTP decoder of a pipeline `HTTP1Channel` set up, and its byte
    /// watcher first. On the channel's event loop.
    static func install(in channel: any Channel, limits: ConnectionLimits, logger: Logger) throws {
        let pipeline = channel.pipeline.syncOperations
        let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
        let guardHandler = SlowClientGuard(limits: limits, logger: logger)
        try pipeline.addHandler(guardHandler, position: .after(decoder))
        try pipeline.addHandler(RequestByteWatcher(guardHandler), position: .first)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        timer = nil
        deadline = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    /// The first request's head is timed from the connection's opening.
    private func start() {
        guard !started else { return }
        started = true
        if reading == .head { arm(.head) }
    }

    /// Called by the ``RequestByteWatcher`` before the decoder sees the bytes.
    func bytesArrived() {
        guard reading == .betweenRequests else { return }
        reading = .head
        arm(.head)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            reading = .body
            unanswered += 1
            arm(.body)
        case .body:
            break
        case .end:
            reading = .betweenRequests
            if unanswered == 0 { arm(.idle) } else { deadline = nil }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0, reading == .betweenRequests { arm(.idle) }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ phase: Phase) {
        let timeout =
            switch phase {
            case .head: limits.headerTimeout
            case .body: limits.bodyTimeout
            case .idle: limits.idleTimeout
            }
        let at = NIODeadline.now() + TimeAmount(timeout)
        deadline = (at, phase)
        if let timer, timer.at <= at { return }
        timer?.task.cancel()
        schedule(at)
    }

    private func schedule(_ at: NIODeadline) {
        guard let context else { return }
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [self] in self.check() }
        timer = (at, task)
    }

    private func check() {
        timer = nil
        guard let deadline, let context else { return }
        guard deadline.at <= .now() else {
            schedule(deadline.at)
            return
        }
        self.deadline = nil
        logger.debug(
            "closing a connection: the client was too slow",
            metadata: ["phase": "\(deadline.phase.rawValue)", "remote": "\(context.channel.remoteAddress?.ipAddress ?? "?")"]
        )
        context.close(promise: nil)
    }
}

/// Sits before the HTTP decoder and tells the ``SlowClientGuard`` that bytes arrived, so the
/// head of a later request on a keep-alive connection is timed from its first byte.
final class RequestByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let guardHandler: SlowClientGuard

    init(_ guardHandler: SlowClientGuard) {
        self.guardHandler = guardHandler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guardHandler.bytesArrived()
        context.fireChannelRead(data)
    }
}
