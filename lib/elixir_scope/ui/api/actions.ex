defmodule ElixirScope.UI.API.Actions do
  @moduledoc false
  # POST /api/trace: the only requests that change anything — what is traced. The
  # transport has already checked that the request is same-origin and carries the
  # CSRF token; the body is JSON: {"action": ..., "pid": "<0.1.0>"} or
  # {"action": ..., "module": "MyApp.Cart"}.

  alias ElixirScope.JSON
  alias ElixirScope.UI.{Params, Source}

  @on_pid %{
    "trace_process" => :trace_process,
    "trace_genserver" => :trace_genserver,
    "untrace_process" => :untrace_process
  }
  @on_module %{"trace_module" => :trace_module, "stop_trace_module" => :stop_trace_module}

  @doc false
  def trace(ctx) do
    body =
      case JSON.decode(ctx.body, max_bytes: 4_096) do
        {:ok, %{} = body} -> body
        {:ok, _} -> Params.fail("the body must be a JSON object")
        {:error, reason} -> Params.fail("the body is not JSON: #{reason}")
      end

    actions = Map.merge(@on_pid, @on_module)
    action = Params.choice(body, "action", actions, nil) || Params.fail("missing action")

    target =
      if Map.has_key?(@on_pid, body["action"]),
        do: Params.pid!(body, "pid"),
        else: Params.module!(body, "module")

    case Source.trace(action, target) do
      :ok ->
        {200, %{"ok" => true}}

      {:error, reason} ->
        {409, %{"error" => why(reason)}}
    end
  end

  defp why(:not_running), do: "ElixirScope is not tracing (start it with ElixirScope.setup/1)"
  defp why(:not_alive), do: "that process is not running"
  defp why(:not_a_gen_server), do: "that process is not a GenServer"

  defp why({:traced_by_another_tool, _}),
    do: "another tool (:dbg, recon, ...) already traces that process"

  defp why({:module_not_loaded, m}), do: "#{inspect(m)} is not loaded"
  defp why(other), do: "could not do it: #{inspect(other, limit: 10)}"
end
