defmodule ElixirScope.MCP.HTTP do
  @moduledoc false
  # The Streamable HTTP transport of the MCP server, as an `:inets` httpd module: one
  # endpoint, `/mcp`. Each request runs in its own httpd process.
  #
  # In order: the path, DNS-rebinding protection (`Host`, `Origin`), the bearer token,
  # then the method. POST carries JSON-RPC (checked `Accept` and `Content-Type`, the
  # session after `initialize`); GET answers 405 (no server-initiated stream); DELETE
  # ends a session. Status codes and error bodies follow the MCP specification and the
  # official TypeScript SDK's server. The JSON-RPC itself is `ElixirScope.MCP.Protocol`'s.

  require Record
  alias ElixirScope.JSON
  alias ElixirScope.MCP.{Protocol, Sessions}
  alias ElixirScope.Web.Guard

  Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

  @doc false
  def unquote(:do)(request) do
    config = :httpd_util.lookup(mod(request, :config_db), :elixir_scope_mcp)
    # httpd writes the head and the body separately: without TCP_NODELAY the body
    # waits for the client's delayed ACK, 40 ms a request.
    if mod(request, :socket_type) == :ip_comm,
      do: :inet.setopts(mod(request, :socket), nodelay: true)

    ElixirScope.Tracing.untrace_self()

    response =
      try do
        handle(request, config)
      rescue
        exception ->
          message = "Internal error: " <> Exception.message(exception)
          error_response(500, -32603, message)
      end

    {:proceed, [{:response, {:response, head(response), body(response)}}]}
  end

  defp handle(request, config) do
    headers = Map.new(mod(request, :parsed_header), fn {k, v} -> {to_string(k), to_string(v)} end)

    with :ok <- check_path(mod(request, :request_uri)),
         :ok <- check_host(headers["host"], config),
         :ok <- check_origin(headers["origin"], config),
         :ok <- check_token(headers["authorization"], config) do
      case mod(request, :method) do
        ~c"POST" -> post(headers, IO.iodata_to_binary(mod(request, :entity_body)), config)
        ~c"DELETE" -> delete(headers, config)
        _ -> method_not_allowed()
      end
    end
  end

  defp check_path(uri) do
    case :string.split(uri, ~c"?") do
      [~c"/mcp" | _] -> :ok
      _ -> {404, [content_type("text/plain")], "Not Found: the MCP endpoint is /mcp\n"}
    end
  end

  ## DNS-rebinding protection and the token (ElixirScope.Web.Guard)

  defp check_host(host, config),
    do: host |> Guard.check_host(config.allowed_hosts) |> forbidden()

  defp check_origin(origin, config),
    do: origin |> Guard.check_origin(config.allowed_origins) |> forbidden()

  defp forbidden(:ok), do: :ok
  defp forbidden({:error, why}), do: error_response(403, -32000, "Forbidden: " <> why)

  defp check_token(_header, %{token: nil}), do: :ok

  defp check_token("Bearer " <> given, %{token: token}) do
    if Guard.token_matches?(given, token),
      do: :ok,
      else: unauthorized("invalid bearer token")
  end

  defp check_token(_header, _config), do: unauthorized("a bearer token is required")

  defp unauthorized(why) do
    {status, headers, body} = error_response(401, -32000, "Unauthorized: #{why}")
    {status, [{~c"www-authenticate", ~c"Bearer"} | headers], body}
  end

  ## POST: JSON-RPC

  defp post(headers, body, config) do
    with :ok <- check_accept(headers["accept"]),
         :ok <- check_content_type(headers["content-type"]),
         {:ok, message} <- decode(body, config) do
      cond do
        not Protocol.initialize?(message) ->
          in_session(message, headers, config)

        headers["mcp-session-id"] != nil ->
          error_response(400, -32600, "Invalid Request: Server already initialized")

        true ->
          initialize(message, config)
      end
    end
  end

  defp check_accept(accept) do
    types = media_types(accept)

    json = Enum.any?(types, &(&1 in ["application/json", "application/*", "*/*"]))
    sse = Enum.any?(types, &(&1 in ["text/event-stream", "text/*", "*/*"]))

    if json and sse,
      do: :ok,
      else:
        error_response(
          406,
          -32000,
          "Not Acceptable: Client must accept both application/json and text/event-stream"
        )
  end

  defp check_content_type(type) do
    if "application/json" in media_types(type),
      do: :ok,
      else:
        error_response(
          415,
          -32000,
          "Unsupported Media Type: Content-Type must be application/json"
        )
  end

  defp media_types(nil), do: []

  defp media_types(header) do
    for part <- String.split(header, ","),
        do: part |> String.split(";") |> hd() |> String.trim() |> String.downcase()
  end

  defp decode(body, config) do
    case JSON.decode(body, max_bytes: config.max_body_bytes) do
      {:ok, batch} when is_list(batch) and length(batch) > 100 ->
        error_response(400, -32600, "Invalid Request: a batch holds at most 100 messages")

      {:ok, message} ->
        if Protocol.valid?(message),
          do: {:ok, message},
          else: error_response(400, -32700, "Parse error: Invalid JSON-RPC message")

      {:error, reason} ->
        error_response(400, -32700, "Parse error: #{reason}")
    end
  end

  defp initialize(message, config) do
    {response, version} = Protocol.initialize(message)
    session = Sessions.create(config.sessions, version, config.max_sessions)
    json_response(200, [{~c"mcp-session-id", String.to_charlist(session)}], response)
  end

  defp in_session(message, headers, config) do
    with {:ok, _id, version} <- session(headers, config),
         :ok <- check_protocol_version(headers["mcp-protocol-version"], version) do
      case Protocol.handle(message, %{config: config, protocol_version: version}) do
        nil -> {202, [], ""}
        response -> json_response(200, [], response)
      end
    end
  end

  defp session(headers, config) do
    case headers["mcp-session-id"] do
      nil ->
        error_response(400, -32000, "Bad Request: Mcp-Session-Id header is required")

      id ->
        case Sessions.touch(config.sessions, id) do
          {:ok, version} -> {:ok, id, version}
          :error -> error_response(404, -32001, "Session not found")
        end
    end
  end

  # A client names the version agreed at initialize on every later request; one that
  # names none speaks 2025-03-26, the last version without the header.
  defp check_protocol_version(nil, _agreed), do: :ok

  defp check_protocol_version(version, _agreed) do
    if version in Protocol.versions(),
      do: :ok,
      else:
        error_response(
          400,
          -32000,
          "Bad Request: Unsupported protocol version #{inspect(version)} (supported versions: " <>
            Enum.join(Protocol.versions(), ", ") <> ")"
        )
  end

  ## DELETE: end a session

  defp delete(headers, config) do
    with {:ok, id, _version} <- session(headers, config) do
      Sessions.delete(config.sessions, id)
      {200, [], ""}
    end
  end

  defp method_not_allowed do
    {status, headers, body} = error_response(405, -32000, "Method not allowed.")
    {status, [{~c"allow", ~c"POST, DELETE"} | headers], body}
  end

  ## Responses

  defp json_response(status, headers, term),
    do: {status, [content_type("application/json") | headers], JSON.encode!(term)}

  defp error_response(status, code, message),
    do: json_response(status, [], Protocol.error(nil, code, message))

  defp content_type(type), do: {:content_type, String.to_charlist(type)}

  defp head({status, headers, body}),
    do: [code: status, content_length: Integer.to_charlist(byte_size(body))] ++ headers

  defp body({_status, _headers, body}), do: body
end
