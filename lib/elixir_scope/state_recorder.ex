defmodule ElixirScope.StateRecorder do
  @moduledoc """
  Records the state changes of a GenServer without tracing it.

  Add `use ElixirScope.StateRecorder` to a GenServer module:

      defmodule Counter do
        use GenServer
        use ElixirScope.StateRecorder

        def start_link(n), do: GenServer.start_link(__MODULE__, n)

        @impl true
        def init(n), do: {:ok, %{count: n}}

        @impl true
        def handle_call(:get, _from, state), do: {:reply, state.count, state}

        @impl true
        def handle_cast(:bump, state), do: {:noreply, %{state | count: state.count + 1}}
      end

  Your callbacks stay exactly as written and return exactly what they returned
  before. After each one returns, the state it produced is stored as a `:state` event
  (see `ElixirScope.TraceDB`):

      %{pid: self(), module: Counter, state: new_state, callback: callback, cause: cause}

    * `init/1` — always recorded: `callback: :init`, `cause:` the init argument;
    * `handle_call/3`, `handle_cast/2`, `handle_info/2`, `handle_continue/2` —
      recorded only when the new state differs (`!==`) from the state the callback
      was given; `callback:` is the callback's name and `cause:` the request, the
      cast, the message or the continue term.

  Then the history of a process is one query away:

      {:ok, _} = ElixirScope.TraceDB.start_link()
      {:ok, pid} = Counter.start_link(0)
      GenServer.cast(pid, :bump)
      1 = GenServer.call(pid, :get)    # :get leaves the state as it is: not recorded

      ElixirScope.TraceDB.query_events(type: :state, pid: pid)
      |> Enum.map(&{&1.callback, &1.cause, &1.state})
      #=> [{:init, 0, %{count: 0}}, {:handle_cast, :bump, %{count: 1}}]

  Every return shape GenServer accepts is understood (`{:reply, r, s}`,
  `{:reply, r, s, extra}`, `{:noreply, s}`, `{:noreply, s, extra}`,
  `{:stop, reason, r, s}`, `{:stop, reason, s}`, `{:ok, s}`, `{:ok, s, extra}`,
  `:ignore`, `{:stop, reason}`), including values returned with `throw/1`; shapes
  without a state record nothing.

  Recording never changes what the server does. When ElixirScope is not running,
  `ElixirScope.TraceDB.store_event/2` answers `{:error, :not_running}` after one
  `:persistent_term` lookup and the answer is ignored, so the module can stay
  instrumented in production; errors inside the recorder are swallowed too.

  Only the callbacks the module defines itself are wrapped (the defaults of
  `use GenServer` are left alone). Put `use ElixirScope.StateRecorder` anywhere in
  the module body, before or after `use GenServer`.
  """

  @callbacks [handle_call: 3, handle_cast: 2, handle_info: 2, handle_continue: 2]

  @doc false
  defmacro __using__(_opts) do
    quote do
      @before_compile ElixirScope.StateRecorder
    end
  end

  @doc false
  defmacro __before_compile__(env) do
    module = env.module

    init =
      if wrap?(module, {:init, 1}) do
        quote do
          defoverridable init: 1

          def init(init_arg) do
            result =
              try do
                super(init_arg)
              catch
                :throw, value ->
                  ElixirScope.StateRecorder.__init__(__MODULE__, init_arg, value)
                  throw(value)
              end

            ElixirScope.StateRecorder.__init__(__MODULE__, init_arg, result)
          end
        end
      end

    handlers =
      for {name, arity} <- @callbacks, wrap?(module, {name, arity}) do
        args = Macro.generate_arguments(arity, __MODULE__)
        cause = hd(args)
        state = List.last(args)

        quote do
          defoverridable [{unquote(name), unquote(arity)}]

          def unquote(name)(unquote_splicing(args)) do
            result =
              try do
                super(unquote_splicing(args))
              catch
                :throw, value ->
                  ElixirScope.StateRecorder.__handled__(
                    __MODULE__,
                    unquote(name),
                    unquote(cause),
                    unquote(state),
                    value
                  )

                  throw(value)
              end

            ElixirScope.StateRecorder.__handled__(
              __MODULE__,
              unquote(name),
              unquote(cause),
              unquote(state),
              result
            )
          end
        end
      end

    quote do
      unquote(init)
      unquote_splicing(handlers)
    end
  end

  # Only callbacks the module defines itself are wrapped: the defaults `use GenServer`
  # injects (their definition has `context: GenServer`) leave the state as it is, and
  # Elixir deprecates calling `super` on them.
  defp wrap?(module, function) do
    case Module.get_definition(module, function) do
      {:v1, :def, meta, _clauses} -> meta[:context] != GenServer
      _ -> false
    end
  end

  @doc false
  # Called with what init/1 returned; records the initial state and returns `result`.
  @spec __init__(module(), term(), term()) :: term()
  def __init__(module, init_arg, result) do
    case result do
      {:ok, state} -> record(module, state, :init, init_arg)
      {:ok, state, _extra} -> record(module, state, :init, init_arg)
      _ -> :ok
    end

    result
  end

  @doc false
  # Called with what a handle_* callback returned; records the new state when it
  # differs from `old_state` and returns `result`.
  @spec __handled__(module(), atom(), term(), term(), term()) :: term()
  def __handled__(module, callback, cause, old_state, result) do
    case new_state(result) do
      {:ok, state} when state !== old_state -> record(module, state, callback, cause)
      _ -> :ok
    end

    result
  end

  defp new_state({:reply, _reply, state}), do: {:ok, state}
  defp new_state({:reply, _reply, state, _extra}), do: {:ok, state}
  defp new_state({:noreply, state}), do: {:ok, state}
  defp new_state({:noreply, state, _extra}), do: {:ok, state}
  defp new_state({:stop, _reason, _reply, state}), do: {:ok, state}
  defp new_state({:stop, _reason, state}), do: {:ok, state}
  defp new_state(_other), do: :none

  defp record(module, state, callback, cause) do
    ElixirScope.TraceDB.store_event(:state, %{
      pid: self(),
      module: module,
      state: state,
      callback: callback,
      cause: cause
    })
  catch
    _kind, _reason -> :ok
  end
end
