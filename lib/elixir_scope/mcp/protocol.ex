defmodule ElixirScope.MCP.Protocol do
  @moduledoc false
  # The JSON-RPC 2.0 side of MCP, free of HTTP: which messages are valid, the
  # `initialize` handshake with version negotiation, `ping`, `tools/list` and
  # `tools/call`. Messages are decoded JSON (maps with string keys); answers are maps
  # ready to encode, or nil for notifications and client responses, which get none.

  alias ElixirScope.MCP.Tools

  # Newest first: the answer to a client asking for a version we do not speak.
  @versions ["2025-11-25", "2025-06-18", "2025-03-26"]

  @instructions """
  ElixirScope records what the processes of this running Elixir application do \
  (messages, function calls, GenServer state changes, crashes) and answers questions \
  about them. Start with elixir_scope_status (what is traced) and \
  elixir_scope_list_processes or elixir_scope_find_processes (pids), then trace what \
  you need (elixir_scope_trace_process, elixir_scope_trace_module) and read the \
  recording (state timeline, message flow, function calls, recent crashes). Pids are \
  written "#PID<0.123.0>"; timestamps are the integers shown in event listings.\
  """

  def versions, do: @versions

  @doc false
  # A JSON-RPC 2.0 request, notification or response, or a batch of them (2025-03-26).
  def valid?([_ | _] = batch), do: Enum.all?(batch, &valid_one?/1)
  def valid?(message), do: valid_one?(message)

  defp valid_one?(%{"jsonrpc" => "2.0", "method" => method} = message) when is_binary(method),
    do: not Map.has_key?(message, "id") or valid_id?(message["id"])

  defp valid_one?(%{"jsonrpc" => "2.0", "id" => id} = message),
    do: valid_id?(id) and (Map.has_key?(message, "result") or Map.has_key?(message, "error"))

  defp valid_one?(_), do: false

  defp valid_id?(id), do: is_binary(id) or is_integer(id)

  def initialize?(%{"method" => "initialize"}), do: true
  def initialize?(_), do: false

  @doc false
  # The answer to `initialize` and the protocol version agreed.
  def initialize(%{"id" => id} = message) do
    params = if is_map(message["params"]), do: message["params"], else: %{}
    asked = params["protocolVersion"]
    version = if asked in @versions, do: asked, else: hd(@versions)

    result = %{
      "protocolVersion" => version,
      "capabilities" => %{"tools" => %{"listChanged" => false}},
      "serverInfo" => %{
        "name" => "elixir_scope",
        "title" => "ElixirScope",
        "version" => ElixirScope.version()
      },
      "instructions" => @instructions
    }

    {%{"jsonrpc" => "2.0", "id" => id, "result" => result}, version}
  end

  # `initialize` sent as a notification has no answer to carry the session.
  def initialize(_notification),
    do: {error(nil, -32600, "Invalid Request: initialize must be a request"), hd(@versions)}

  @doc false
  # The answer to a message (or a batch: the list of answers), nil when none is due.
  def handle(batch, context) when is_list(batch) do
    case batch |> Enum.map(&handle(&1, context)) |> Enum.reject(&is_nil/1) do
      [] -> nil
      answers -> answers
    end
  end

  def handle(%{"method" => method, "id" => id} = request, context) do
    params = Map.get(request, "params") || %{}

    if is_map(params) do
      case call(method, params, context) do
        {:ok, result} -> %{"jsonrpc" => "2.0", "id" => id, "result" => result}
        {:error, code, message} -> error(id, code, message)
      end
    else
      error(id, -32602, "Invalid params: params must be an object")
    end
  end

  # Notifications (initialized, cancelled, ...) and responses to us: nothing to say.
  def handle(_notification_or_response, _context), do: nil

  defp call("initialize", _params, _context),
    do: {:error, -32600, "Invalid Request: this session is already initialized"}

  defp call("ping", _params, _context), do: {:ok, %{}}

  defp call("tools/list", params, context) do
    case params["cursor"] do
      nil -> {:ok, %{"tools" => Tools.definitions(context.config)}}
      _ -> {:error, -32602, "Invalid params: unknown cursor (the tool list has one page)"}
    end
  end

  defp call("tools/call", %{"name" => name} = params, context) when is_binary(name) do
    arguments = Map.get(params, "arguments") || %{}

    cond do
      not Tools.exists?(name) ->
        {:error, -32602, "Unknown tool: #{name}; tools/list names the tools"}

      not is_map(arguments) ->
        {:error, -32602, "Invalid params: arguments must be an object"}

      true ->
        {:ok, Tools.call(name, arguments, context.config)}
    end
  end

  defp call("tools/call", _params, _context),
    do: {:error, -32602, "Invalid params: tools/call needs the tool's name"}

  defp call(method, _params, _context), do: {:error, -32601, "Method not found: #{method}"}

  @doc false
  def error(id, code, message),
    do: %{"jsonrpc" => "2.0", "id" => id, "error" => %{"code" => code, "message" => message}}
end
