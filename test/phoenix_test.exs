defmodule ElixirScope.PhoenixTest do
  # What needs no Phoenix: this VM has neither :telemetry nor Phoenix (test/phoenix/
  # runs the real application, in a peer node). Here: setup(phoenix: true) without
  # :telemetry, option checks, and the telemetry handler called directly with what real
  # Phoenix never sends (malformed metadata) and with the shapes that exercise the
  # redaction rules one by one; the tracer's redaction (C) held against it.
  #
  # ElixirScope is a singleton (registered names, one tracer): never async.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog
  import ElixirScope.Test.Wait
  import ElixirScope.Test.Stores, only: [clean_slate: 1]

  alias ElixirScope.Phoenix, as: PX
  alias ElixirScope.Phoenix.Capture
  alias ElixirScope.TraceDB

  @moduletag :capture_log

  setup :clean_slate

  defmodule Cart do
    @moduledoc false
    use GenServer
    def start_link(_), do: GenServer.start_link(__MODULE__, [])
    @impl true
    def init(items), do: {:ok, items}
    @impl true
    def handle_call({:add, item}, _from, items), do: {:reply, :ok, [item | items]}
  end

  # The handler as telemetry would call it in the emitting process (this one), with
  # the configuration setup/1 gave it.
  defp emit(event, measurements, metadata) do
    config = Capture.handler_config(ElixirScope.Config.validate!(configured()))
    assert Capture.handle_event(event, measurements, metadata, config) == :ok
  end

  defp configured, do: Process.get(:scope_opts, [])

  defp setup!(opts \\ []) do
    Process.put(:scope_opts, opts)
    capture_log(fn -> :ok = ElixirScope.setup([phoenix: true] ++ opts) end)
  end

  defp no_secret_stored!(secrets) do
    raw = :erlang.term_to_binary(TraceDB.query_events([]))
    for s <- secrets, do: assert(:binary.match(raw, s) == :nomatch, "#{s} reached the store")
  end

  describe "setup(phoenix: true)" do
    test "without :telemetry (as in this VM): one warning, and everything else runs" do
      refute Code.ensure_loaded?(:telemetry)
      log = setup!()
      warnings = Regex.scan(~r/\[warning\].*/, log)
      assert length(warnings) == 1, log
      assert log =~ "phoenix: true, but :telemetry is not loaded"

      assert ElixirScope.running?()
      cart = start_supervised!(Cart)
      :ok = ElixirScope.trace_genserver(cart)
      :ok = GenServer.call(cart, {:add, :pear})
      assert wait_until(fn -> length(ElixirScope.state_timeline(cart)) == 2 end)
      assert PX.requests() == []
    end

    test "the redact option is validated" do
      for bad <- ["password", [:password], [""], ["ok", 1], nil, ["a" | "b"]] do
        error = assert_raise ArgumentError, fn -> ElixirScope.setup(redact: bad) end
        assert error.message =~ ":redact"
      end

      refute ElixirScope.running?()
    end
  end

  describe "redaction" do
    test "any key containing password, token or secret, any case, any depth" do
      setup!()

      params = %{
        "user" => %{"Password" => "pw-1", "password_confirmation" => "pw-2", "name" => "ann"},
        "AUTH_TOKEN" => "tok-1",
        "items" => [%{"client_secret" => "sec-1", "n" => 1}],
        "opts" => [api_token: "tok-2", page: 2],
        "pair" => {:secret, "sec-2"},
        "nested" => %{"deeper" => %{"x" => [1, %{"my_token_here" => "tok-3"}]}},
        "improper" => [{"password", "pw-4"} | :tail]
      }

      assigns = %{
        current_user: %URI{host: "example.com", userinfo: "keep", path: "/"},
        session_secret: "sec-3",
        form: [password: "pw-3"],
        __changed__: %{session_secret: true}
      }

      socket = %{view: ElixirScope.PhoenixTest.Live, assigns: assigns}
      emit([:phoenix, :live_view, :mount, :start], %{}, %{socket: socket, params: params})
      emit([:phoenix, :live_view, :mount, :stop], %{duration: 1}, %{socket: socket})
      [start, stop] = PX.events()

      expected = %{
        "user" => %{
          "Password" => "[REDACTED]",
          "password_confirmation" => "[REDACTED]",
          "name" => "ann"
        },
        "AUTH_TOKEN" => "[REDACTED]",
        "items" => [%{"client_secret" => "[REDACTED]", "n" => 1}],
        "opts" => [api_token: "[REDACTED]", page: 2],
        "pair" => {:secret, "[REDACTED]"},
        "nested" => %{"deeper" => %{"x" => [1, %{"my_token_here" => "[REDACTED]"}]}},
        "improper" => [{"password", "[REDACTED]"} | :tail]
      }

      assert start.params == expected

      assert stop.assigns == %{
               current_user: %URI{host: "example.com", userinfo: "keep", path: "/"},
               session_secret: "[REDACTED]",
               form: [password: "[REDACTED]"]
             }

      no_secret_stored!(~w(pw-1 pw-2 pw-3 pw-4 tok-1 tok-2 tok-3 sec-1 sec-2 sec-3))

      # the tracer's rule (C, for a LiveView's states and causes) is the same
      patterns = ["password", "token", "secret"]
      assert ElixirScope.Native.redact(params, patterns) == expected
      assert ElixirScope.Native.redact(assigns, patterns) == Capture.redact(assigns, patterns)
      assert ElixirScope.Native.redact(params, []) == params
    end

    test "the tracer's redaction (C) agrees with the handler's on every term shape" do
      patterns = ["pass", "key"]

      terms = [
        %{"PASSword" => 1, "x" => [%{apikey: 2}, {:key, 3}, {"k", 4}]},
        {:a, :b, %{nested: {:passwd, 5}}},
        [1, 2 | %{"key" => 3}],
        %URI{userinfo: "u", host: "h"},
        [{"Key", <<0xFF, 1>>}, {<<0xFF, ?k, ?e, ?y>>, 6}],
        %{{:password, 1} => 7, 1 => %{"passport" => 8}},
        "password",
        []
      ]

      for term <- terms,
          do: assert(ElixirScope.Native.redact(term, patterns) == Capture.redact(term, patterns))

      # nothing to redact: the very same term comes back
      big = Map.new(1..100, &{&1, [&1, %{"n" => &1}]})
      assert :erts_debug.same(ElixirScope.Native.redact(big, patterns), big)

      assert_raise ArgumentError, ~r/patterns/, fn -> ElixirScope.Native.redact(%{}, [:x]) end
    end

    test "the tracer's redaction of a LiveView form event's url-encoded fields" do
      # the payload of the Phoenix.Socket.Message a LiveView form's submit arrives as
      payload = %{
        "event" => "save",
        "type" => "form",
        "value" =>
          "note=milk&user%5Bpassword%5D=pw+1&KEY=2&user%5Bname%5D=ann&=&x&a%zz=1&api_key="
      }

      assert ElixirScope.Native.redact(payload, ["password", "key"])["value"] ==
               "note=milk&user%5Bpassword%5D=%5BREDACTED%5D&KEY=%5BREDACTED%5D" <>
                 "&user%5Bname%5D=ann&=&x&a%zz=1&api_key=%5BREDACTED%5D"

      # only in a form event's payload
      other = %{payload | "type" => "click"}
      assert ElixirScope.Native.redact(other, ["password"]) == other
    end

    test "a configured list replaces the default; an empty list redacts nothing" do
      setup!(redact: ["EMAIL"])
      params = %{"email" => "a@b.c", "Work_Email" => "w@b.c", "password" => "visible"}
      emit([:phoenix, :channel_joined], %{}, %{params: params})

      assert [%{params: stored}] = PX.events()

      assert stored == %{
               "email" => "[REDACTED]",
               "Work_Email" => "[REDACTED]",
               "password" => "visible"
             }

      :ok = ElixirScope.stop(keep_data: false)
      setup!(redact: [])
      emit([:phoenix, :channel_joined], %{}, %{params: params})
      assert [%{params: ^params}] = PX.events()
    end

    test "the application's :phoenix, :filter_parameters are added: a list of keys" do
      Application.put_env(:phoenix, :filter_parameters, ["card_number", "cvv"])
      on_exit(fn -> Application.delete_env(:phoenix, :filter_parameters) end)
      setup!(redact: ["password"])
      params = %{"card_number" => "4111", "CVV" => "123", "password" => "pw", "n" => 1}
      emit([:phoenix, :channel_joined], %{}, %{params: params})

      assert [%{params: stored}] = PX.events()

      assert stored == %{
               "card_number" => "[REDACTED]",
               "CVV" => "[REDACTED]",
               "password" => "[REDACTED]",
               "n" => 1
             }

      assert ElixirScope.Config.redaction(ElixirScope.Config.validate!([])).patterns ==
               ["password", "token", "secret", "card_number", "cvv"]
    end

    test "the application's {:keep, keys}: every other params key is redacted" do
      Application.put_env(:phoenix, :filter_parameters, {:keep, ["id", "order"]})
      on_exit(fn -> Application.delete_env(:phoenix, :filter_parameters) end)
      setup!()

      params = %{
        "id" => "7",
        "order" => %{"qty" => 2, "password" => "pw-kept-key"},
        "email" => "a@b.c",
        "tags" => ["x", %{"id" => "9", "y" => 1}]
      }

      emit([:phoenix, :live_view, :handle_event, :start], %{}, %{
        socket: %{view: ElixirScope.PhoenixTest.Live},
        event: "save",
        params: params
      })

      assert [%{params: stored}] = PX.events()

      # as Phoenix's logs filter them; redact: still applies inside what is kept
      assert stored == %{
               "id" => "7",
               "order" => %{"qty" => 2, "password" => "[REDACTED]"},
               "email" => "[REDACTED]",
               "tags" => ["[REDACTED]", %{"id" => "9", "y" => "[REDACTED]"}]
             }

      no_secret_stored!(["a@b.c", "pw-kept-key"])
    end
  end

  # What real Phoenix never sends: the handler, called directly, stores what it can.
  test "the handler survives malformed metadata and never raises" do
    setup!()
    improper = [{"password", "improper-secret"} | :tail]

    for {event, measurements, metadata} <- [
          {[:phoenix, :endpoint, :start], %{}, %{conn: nil}},
          {[:phoenix, :endpoint, :start], %{}, %{conn: 42}},
          {[:phoenix, :endpoint, :stop], %{duration: "long"}, %{}},
          {[:phoenix, :endpoint, :stop], %{duration: 1},
           %{conn: %{method: 5, request_path: nil, private: :x, params: "x", status: "200"}}},
          {[:phoenix, :router_dispatch, :start], %{},
           %{
             conn: "x",
             route: 5,
             plug: "Ctrl",
             plug_opts: [1],
             path_params: 7,
             phoenix_live_view: {}
           }},
          {[:phoenix, :router_dispatch, :exception], %{duration: 1},
           %{kind: :bogus, reason: {:weird}, stacktrace: :no}},
          {[:phoenix, :router_dispatch, :exception], %{duration: 1},
           %{kind: :error, reason: %{__struct__: NoSuchException, __exception__: true}}},
          {[:phoenix, :router_dispatch, :exception], %{},
           %{kind: :error, reason: %{__struct__: Plug.Conn.WrapperError}}},
          {[:phoenix, :live_view, :mount, :start], %{},
           %{socket: %{view: "NotAModule", assigns: 5}, params: improper, session: :x}},
          {[:phoenix, :live_view, :handle_event, :stop], %{}, %{socket: :not_a_socket}},
          {[:phoenix, :live_view, :render, :stop], %{duration: -1},
           %{socket: nil, changed?: "yes"}},
          {[:phoenix, :live_component, :update, :stop], %{}, %{socket: %{assigns: [1, 2]}}},
          {[:phoenix, :channel_joined], %{}, %{socket: nil, params: nil, result: "ok"}},
          {[:phoenix, :channel_handled_in], %{duration: :x}, %{socket: [], event: %{}}},
          {[:phoenix, :socket_connected], %{}, %{}},
          {[:phoenix, :socket_connected], %URI{}, %URI{port: 1}}
        ],
        do: emit(event, measurements, metadata)

    # each still became an event, with what could be taken
    events = PX.events()
    assert length(events) == 16
    assert Enum.all?(events, &(&1.pid == self() and is_atom(&1.kind)))
    assert [%{kind: :endpoint, phase: :start} = first | _] = events
    refute Map.has_key?(first, :method)

    assert Enum.find(events, &(&1[:callback] == :mount)).params == [
             {"password", "[REDACTED]"} | :tail
           ]

    no_secret_stored!(["improper-secret"])

    # called with anything at all
    for args <- [
          [[:phoenix, :endpoint, :start], nil, nil, nil],
          [[:phoenix, :endpoint, :start], %{}, %{conn: %{}}, :no_config],
          [:not_a_list, 1, 2, 3],
          [[:phoenix, :unknown], %{}, %{}, %{redact: nil, keep: nil}],
          [[:phoenix, :live_view, :nope, :start], %{}, %{}, %{redact: ["x"], keep: nil}]
        ],
        do: assert(apply(Capture, :handle_event, args) == :ok)

    # and a well-formed event is still recorded afterwards
    emit([:phoenix, :socket_connected], %{duration: 3}, %{result: :ok})
    assert %{kind: :socket_connected, duration: 3} = List.last(PX.events())
  end

  test "with ElixirScope stopped, the handler stores nothing and does not fail" do
    assert Capture.handle_event([:phoenix, :channel_joined], %{}, %{}, %{redact: nil, keep: nil}) ==
             :ok
  end

  test "bad arguments raise, a request no longer stored gives []" do
    setup!()
    emit([:phoenix, :channel_joined], %{duration: 1}, %{})
    [joined] = PX.events()

    assert_raise ArgumentError, ~r/not_a_filter/, fn -> PX.requests(not_a_filter: 1) end
    assert_raise ArgumentError, ~r/:status/, fn -> PX.requests(status: "200") end
    assert_raise ArgumentError, ~r/:method/, fn -> PX.requests(method: :get) end
    assert_raise ArgumentError, ~r/events\/1/, fn -> PX.requests(kind: :live_view) end
    assert_raise ArgumentError, ~r/keyword/, fn -> PX.events(%{kind: :endpoint}) end
    assert_raise ArgumentError, ~r/:limit/, fn -> PX.requests(limit: -1) end
    assert_raise ArgumentError, ~r/request/, fn -> PX.request_timeline("1") end
    assert_raise ArgumentError, ~r/request/, fn -> PX.request_timeline(joined) end
    assert_raise ArgumentError, ~r/:pid/, fn -> PX.request_timeline(joined, pid: self()) end
    assert_raise ArgumentError, ~r/:after/, fn -> PX.request_timeline(joined.id, after: 5) end
    assert PX.request_timeline(10_000_000) == []
    assert_raise ArgumentError, ~r/pid/, fn -> PX.live_view_timeline(:lv) end
    assert_raise ArgumentError, ~r/:topic/, fn -> PX.broadcasts(topic: 1) end
    assert_raise ArgumentError, ~r/:module/, fn -> PX.broadcasts(module: Foo) end
  end
end
