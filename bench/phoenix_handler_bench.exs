# The Phoenix telemetry handler (ElixirScope.Phoenix.Capture.handle_event/4), per event,
# against the handler as it was before the integration was tested against real Phoenix
# (bench/support/capture_before.exs), in the same run, on the same store:
#
#   MIX_ENV=prod mix run bench/phoenix_handler_bench.exs
#
# The events are those of a JSON request (endpoint and router start and stop, with a
# conn shaped as Plug's: headers, cookies, params with a password) and of a LiveView
# event (handle_event start and stop, with assigns). Each is called in a loop in this
# process, as telemetry calls handlers in the emitting process; medians of 15 samples
# of 20,000 calls each, the two handlers' samples alternating, in ns per event. The
# store is cleared before each sample.

Code.require_file("support/bench_util.exs", __DIR__)
Code.require_file("support/capture_before.exs", __DIR__)

defmodule Bench.PhoenixHandler do
  @moduledoc false
  alias Bench.Util
  alias ElixirScope.Phoenix.Capture
  alias ElixirScope.TraceDB

  @iters 20_000
  @samples 15

  defp conn(status) do
    %{
      __struct__: Plug.Conn,
      method: "POST",
      request_path: "/cart/items",
      host: "www.example.com",
      query_string: "",
      status: status,
      req_headers: for(i <- 1..12, do: {"x-header-#{i}", String.duplicate("v", 40)}),
      req_cookies: %{"_key" => String.duplicate("c", 200)},
      params: %{"item" => "pear", "price" => "4", "user" => %{"password" => "pw", "n" => 1}},
      path_params: %{},
      private: %{phoenix_endpoint: MyAppWeb.Endpoint, phoenix_router: MyAppWeb.Router},
      assigns: %{}
    }
  end

  defp socket do
    %{
      __struct__: Phoenix.LiveView.Socket,
      view: MyAppWeb.CounterLive,
      transport_pid: self(),
      assigns: %{
        __changed__: %{count: true},
        count: 3,
        cart_total: 12,
        flash: %{},
        form: %{"note" => "x", "password" => "pw"},
        items: Enum.to_list(1..20)
      }
    }
  end

  def events do
    router = %{
      conn: conn(nil),
      route: "/cart/items",
      plug: MyAppWeb.CartController,
      plug_opts: :add,
      path_params: %{},
      pipe_through: [:api]
    }

    [
      {"request: endpoint start", [:phoenix, :endpoint, :start], %{system_time: 1},
       %{conn: conn(nil), options: []}},
      {"request: router start", [:phoenix, :router_dispatch, :start], %{system_time: 1}, router},
      {"request: endpoint stop", [:phoenix, :endpoint, :stop], %{duration: 1000},
       %{conn: conn(201), options: []}},
      {"request: router stop", [:phoenix, :router_dispatch, :stop], %{duration: 900},
       %{router | conn: conn(201)}},
      {"LiveView: handle_event start", [:phoenix, :live_view, :handle_event, :start],
       %{system_time: 1},
       %{socket: socket(), event: "inc", params: %{"by" => "1", "token" => "t"}}},
      {"LiveView: handle_event stop", [:phoenix, :live_view, :handle_event, :stop],
       %{duration: 500}, %{socket: socket(), event: "inc", params: %{"by" => "1"}}}
    ]
  end

  def run do
    {:ok, _} = TraceDB.start_link(max_events: 2_000_000, max_bytes: 512 * 1024 * 1024)
    scope_config = ElixirScope.Config.validate!([])
    now = Capture.handler_config(scope_config)
    before = %{redact: ["password", "token", "secret"]}

    IO.puts("""
    Phoenix telemetry handler, ns per event (median of #{@samples} x #{@iters} calls)
      Elixir #{System.version()}, OTP #{System.otp_release()}, MIX_ENV=#{Mix.env()}
      redact: #{inspect(scope_config.redact)} (and :phoenix filter_parameters: none here)

    | event | before | now | now / before |
    |---|---|---|---|\
    """)

    for {name, event, m, meta} <- events() do
      {b, n} =
        measure(
          fn -> Bench.CaptureBefore.handle_event(event, m, meta, before) end,
          fn -> Capture.handle_event(event, m, meta, now) end
        )

      IO.puts("| #{name} | #{round(b)} | #{round(n)} | #{Float.round(n / b, 2)} |")
    end
  end

  # Samples of the two alternate (before, now, before, ...), so that the machine's state
  # weighs on both alike.
  defp measure(before, now) do
    samples =
      for _ <- 1..@samples do
        TraceDB.clear()
        b = Util.sample_ns(before, @iters)
        TraceDB.clear()
        {b, Util.sample_ns(now, @iters)}
      end

    {Util.median(Enum.map(samples, &elem(&1, 0))), Util.median(Enum.map(samples, &elem(&1, 1)))}
  end
end

Bench.PhoenixHandler.run()
