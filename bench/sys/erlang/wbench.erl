%% The Erlang side of the wandist side-by-side benchmark.
%%
%% Node b runs server/0: a registered 'sink' that counts one-way streams and
%% a registered 'echo' that answers requests. Node a runs driver/0: it reads
%% commands on standard input, runs them against node b over Erlang
%% distribution, and prints one "result ..." line per command:
%%
%%   oneway SIZE N        -> result oneway got=G ooo=O bad=B ns=NS
%%   rr SIZE RATE DUR_MS  -> result rr sent=S ok=K p50=.. p99=.. p999=.. max=.. late=.. (ns)
%%   quit
-module(wbench).
-export([server/0, driver/0]).

server() ->
    register(echo, spawn(fun echo/0)),
    register(sink, spawn(fun sink_idle/0)),
    io:format("ready~n").

echo() ->
    receive
        {req, From, Tag, Bin} -> From ! {rep, Tag, Bin}
    end,
    echo().

sink_idle() ->
    receive
        {start, From, N} -> sink(From, N, 0, 0, 0, -1, 0)
    end.

%% Counts N messages (or stops after 3 s without one) and reports the count,
%% the out-of-order and malformed ones, and the wall-clock time of the last.
sink(From, N, Got, Ooo, Bad, _Max, Last) when Got >= N ->
    From ! {sink_done, Got, Ooo, Bad, Last},
    sink_idle();
sink(From, N, Got, Ooo, Bad, Max, Last) ->
    receive
        {msg, <<Seq:64, _/binary>>} ->
            Now = os:system_time(nanosecond),
            Ooo1 = case Seq < Max of true -> Ooo + 1; false -> Ooo end,
            sink(From, N, Got + 1, Ooo1, Bad, max(Seq, Max), Now);
        {msg, _} ->
            sink(From, N, Got, Ooo, Bad + 1, Max, Last)
    after 3000 ->
        From ! {sink_done, Got, Ooo, Bad, Last},
        sink_idle()
    end.

driver() ->
    Peer = list_to_atom(os:getenv("WBENCH_PEER")),
    connect(Peer, 100),
    io:format("ready~n"),
    loop(Peer).

connect(Peer, 0) ->
    io:format("error cannot connect to ~p~n", [Peer]),
    halt(1);
connect(Peer, Tries) ->
    case net_kernel:connect_node(Peer) andalso
         is_pid(rpc:call(Peer, erlang, whereis, [echo])) of
        true -> ok;
        false -> timer:sleep(100), connect(Peer, Tries - 1)
    end.

loop(Peer) ->
    case io:get_line("") of
        eof -> halt(0);
        {error, _} -> halt(0);
        Line ->
            case string:lexemes(string:trim(Line), " ") of
                ["oneway", S, N] ->
                    oneway(Peer, list_to_integer(S), list_to_integer(N));
                ["rr", S, R, D] ->
                    rr(Peer, list_to_integer(S), list_to_integer(R), list_to_integer(D));
                ["quit"] ->
                    halt(0);
                Other ->
                    io:format("result error unknown command ~p~n", [Other])
            end,
            loop(Peer)
    end.

oneway(Peer, Size, N) ->
    Sink = rpc:call(Peer, erlang, whereis, [sink]),
    Sink ! {start, self(), N},
    Body = binary:copy(<<"a">>, max(0, Size - 8)),
    T0 = os:system_time(nanosecond),
    send_loop(Sink, Body, 0, N),
    receive
        {sink_done, Got, Ooo, Bad, Last} ->
            io:format("result oneway got=~b ooo=~b bad=~b ns=~b~n", [Got, Ooo, Bad, max(0, Last - T0)])
    after 180000 ->
        io:format("result error oneway timed out~n")
    end.

send_loop(_Sink, _Body, N, N) -> ok;
send_loop(Sink, Body, I, N) ->
    Sink ! {msg, <<I:64, Body/binary>>},
    send_loop(Sink, Body, I + 1, N).

rr(Peer, Size, Rate, DurMs) ->
    Echo = rpc:call(Peer, erlang, whereis, [echo]),
    N = Rate * DurMs div 1000,
    Iv = 1000000000 div Rate,
    Body = binary:copy(<<"a">>, max(0, Size - 8)),
    Self = self(),
    Col = spawn_link(fun() -> collect(Self, N, []) end),
    T0 = erlang:monotonic_time(nanosecond) + 10000000,
    Late = schedule(Echo, Col, Body, 0, N, T0, Iv, T0, []),
    receive
        {collected, Lats} ->
            Sorted = lists:sort(Lats),
            K = length(Sorted),
            io:format("result rr sent=~b ok=~b p50=~b p99=~b p999=~b max=~b late=~b~n",
                      [N, K, pct(Sorted, K, 50), pct(Sorted, K, 99), pct(Sorted, K, 99.9),
                       pct(Sorted, K, 100), pct(lists:sort(Late), N, 99)])
    end.

%% Sends request I at its intended time T0 + I*Iv. receive-after has
%% millisecond resolution, so the generator may wake late, and then sends
%% every request that fell due meanwhile. A request is timed from its
%% intended time, or from the generator's last wake-up when that was later:
%% the timer's lateness is not counted, time spent in sends (a suspended
%% sender) is. Returns how late each request was timed from.
schedule(_Echo, _Col, _Body, N, N, _T0, _Iv, _Wake, Late) -> Late;
schedule(Echo, Col, Body, I, N, T0, Iv, Wake, Late) ->
    At = T0 + I * Iv,
    Wake1 = case At - erlang:monotonic_time(nanosecond) of
                Left when Left > 0 ->
                    receive after (Left + 999999) div 1000000 -> ok end,
                    erlang:monotonic_time(nanosecond);
                _ ->
                    Wake
            end,
    Base = max(At, Wake1),
    Echo ! {req, Col, Base, <<I:64, Body/binary>>},
    schedule(Echo, Col, Body, I + 1, N, T0, Iv, Wake1, [Base - At | Late]).

collect(Parent, 0, Lats) -> Parent ! {collected, Lats};
collect(Parent, Left, Lats) ->
    receive
        {rep, At, _Bin} ->
            collect(Parent, Left - 1, [erlang:monotonic_time(nanosecond) - At | Lats])
    after 5000 ->
        Parent ! {collected, Lats}
    end.

pct(_Sorted, 0, _P) -> 0;
pct(Sorted, K, P) ->
    Rank = max(1, min(K, ceil(P / 100 * K))),
    lists:nth(Rank, Sorted).
