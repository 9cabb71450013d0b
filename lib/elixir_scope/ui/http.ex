defmodule ElixirScope.UI.HTTP do
  @moduledoc false
  # The web UI's transport on its own `:inets` httpd: the request as
  # `ElixirScope.UI.Router` reads it, and its answer written back. Each request runs
  # in its own httpd process.

  require Record
  alias ElixirScope.UI.Router

  Record.defrecordp(:mod, Record.extract(:mod, from_lib: "inets/include/httpd.hrl"))

  @doc false
  def unquote(:do)(request) do
    config = :httpd_util.lookup(mod(request, :config_db), :elixir_scope_ui)
    # httpd writes the head and the body separately: without TCP_NODELAY the body
    # waits for the client's delayed ACK, 40 ms a request.
    if mod(request, :socket_type) == :ip_comm,
      do: :inet.setopts(mod(request, :socket), nodelay: true)

    ElixirScope.Tracing.untrace_self()

    {status, headers, body} =
      case parse(request) do
        {:ok, parsed} -> Router.handle(parsed, config)
        {:error, why} -> Router.bad_request(why)
      end

    head =
      [code: status, content_length: Integer.to_charlist(byte_size(body))] ++
        Enum.map(headers, &header/1)

    {:proceed, [{:response, {:response, head, body}}]}
  end

  defp header({"content-type", value}), do: {:content_type, String.to_charlist(value)}
  defp header({name, value}), do: {String.to_charlist(name), String.to_charlist(value)}

  defp parse(request) do
    uri = List.to_string(mod(request, :request_uri))
    [path | query] = String.split(uri, "?", parts: 2)

    with {:ok, segments} <- segments(path) do
      {:ok,
       %{
         method: List.to_string(mod(request, :method)),
         path: segments,
         query: List.first(query) || "",
         headers:
           Map.new(mod(request, :parsed_header), fn {k, v} -> {to_string(k), to_string(v)} end),
         body: IO.iodata_to_binary(mod(request, :entity_body))
       }}
    end
  end

  # "/api/state" -> ["api", "state"], percent-decoded; no "." or ".." segments.
  defp segments(path) do
    segments = path |> String.split("/", trim: true) |> Enum.map(&URI.decode/1)

    if Enum.any?(segments, &(&1 in [".", ".."] or String.contains?(&1, ["/", <<0>>]))),
      do: {:error, "bad path"},
      else: {:ok, segments}
  rescue
    ArgumentError -> {:error, "bad percent-encoding in the path"}
  end
end
